"""Make the bundled sample raster docs/sample/sample_rgb.tif (run with the worker environment's python).

A 512 x 512, 3-band 8-bit scene at 10 m in UTM 33N with a river, forest, fields and bare ground, so every
tool has structure to find. Deterministic: the same file every time.
"""

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin

OUT = Path(__file__).resolve().parent.parent / "docs" / "sample" / "sample_rgb.tif"


def main() -> None:
    rng = np.random.default_rng(42)
    size = 512
    y, x = np.mgrid[0:size, 0:size]
    classes = np.zeros((size, size), np.uint8)  # 0 forest
    classes[(x // 128 + y // 128) % 2 == 1] = 1  # fields in a chequerboard
    classes[(x > 300) & (y > 300)] = 2  # bare ground
    river = np.abs(y - (200 + 60 * np.sin(x / 70))) < 12
    classes[river] = 3
    colours = np.array([[34, 80, 40], [150, 170, 70], [170, 140, 110], [40, 70, 120]], np.float32)
    texture = rng.normal(0, 1, (size, size)).astype(np.float32)
    texture = (texture + np.roll(texture, 1, 0) + np.roll(texture, 1, 1)) / 3
    rgb = colours[classes] + texture[..., None] * np.array([12, 14, 10])
    rgb[..., :] += (np.sin(x / 9) * (classes == 1))[..., None] * 10  # field furrows
    data = np.clip(rgb, 1, 255).astype(np.uint8).transpose(2, 0, 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(OUT, "w", driver="GTiff", width=size, height=size, count=3, dtype="uint8", crs="EPSG:32633",
                       transform=from_origin(600_000, 350_000, 10, 10), nodata=0, compress="deflate") as dst:
        dst.write(data)
        dst.descriptions = ("red", "green", "blue")
    print(OUT)


if __name__ == "__main__":
    main()
