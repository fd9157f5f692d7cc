"""Writing rasters: output names, check_output, finalize with its record and fingerprint, atomic JSON, and the
row writer (order, checksums, and rows reported durable surviving a SIGKILL)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import rasterio
from rasterio.windows import Window

from engine.destinations import partial_path, sidecar_path
from engine.errors import ParameterError
from engine.raster_writing import (OUTPUT_OPTIONS, RowWriter, check_output, file_fingerprint, finalize,
                                   fingerprint_change, rows_checksum, write_json)

from ..conftest import REPO
from ..fixtures import UTM_ORIGIN, random_raster, write_raster

X0, Y0 = UTM_ORIGIN


def test_partial_and_sidecar_names(tmp_path):
    assert partial_path(tmp_path / "out.tif") == tmp_path / "out.partial.tif"
    assert partial_path(tmp_path / "a.b.tiff") == tmp_path / "a.b.partial.tiff"
    assert partial_path(tmp_path / "noext") == tmp_path / "noext.partial.tif"
    assert sidecar_path(tmp_path / "out.tif") == tmp_path / "out.iamap.json"


def test_check_output_wants_a_tif_and_makes_its_folder(tmp_path):
    assert check_output(str(tmp_path / "new" / "dir" / "o.TIF")) == tmp_path / "new" / "dir" / "o.TIF"
    assert (tmp_path / "new" / "dir").is_dir()
    with pytest.raises(ParameterError, match=r"^OUTPUT: o.png: IAMAP writes GeoTIFF"):
        check_output(str(tmp_path / "o.png"))
    with pytest.raises(ParameterError, match=r"^OUTPUT: no output file given"):
        check_output("")


def test_finalize_renames_moves_the_aux_file_and_writes_the_sidecar(tmp_path):
    output = tmp_path / "out.tif"
    for stale in (output, tmp_path / "out.tif.aux.xml", sidecar_path(output)):
        stale.write_text("from an older run")
    partial = random_raster(partial_path(output), 4, 4, bands=1)
    complete = partial.read_bytes()
    (tmp_path / "out.partial.tif.aux.xml").write_text("<PAMDataset/>")
    finalize(partial, output, {"tool": "test", "rows": np.int64(3)})
    assert output.read_bytes() == complete and not partial.exists()
    assert (tmp_path / "out.tif.aux.xml").read_text() == "<PAMDataset/>"
    assert not (tmp_path / "out.partial.tif.aux.xml").exists()
    record = json.loads(sidecar_path(output).read_text())
    assert record == {"tool": "test", "rows": "3", "output_file": file_fingerprint(output)}
    assert record["output_file"]["size"] == len(complete)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.iamap.json", "out.tif", "out.tif.aux.xml"]


def test_finalize_removes_a_stale_aux_file_the_new_output_does_not_have(tmp_path):
    output = tmp_path / "out.tif"
    (tmp_path / "out.tif.aux.xml").write_text("statistics of an older output")
    partial = random_raster(partial_path(output), 4, 4, bands=1)
    finalize(partial, output, {})
    assert not (tmp_path / "out.tif.aux.xml").exists()


@pytest.mark.parametrize("dtype, nodata, fill", [("float32", float("nan"), np.nan), ("uint8", 0, 0),
                                                 ("float32", -9999.0, -9999.0)])
def test_finalize_refuses_a_result_of_nodata_only_and_leaves_nothing(tmp_path, dtype, nodata, fill):
    output = tmp_path / "out.tif"
    partial = write_raster(partial_path(output), np.full((2, 300, 300), fill, dtype), nodata=nodata)
    with pytest.raises(ParameterError) as info:
        finalize(partial, output, {}, "OUTPUT_CONFIDENCE")
    assert info.value.parameter == "OUTPUT_CONFIDENCE" and "(300x300 px) has no valid value" in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_finalize_accepts_one_valid_pixel_in_the_last_block(tmp_path):
    data = np.full((1, 600, 600), np.nan, "float32")
    data[0, -1, -1] = 0.0
    output = tmp_path / "out.tif"
    finalize(write_raster(partial_path(output), data, nodata=float("nan")), output, {})  # blocks of rows
    assert output.exists()


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "record.json"
    path.write_text("old")
    write_json(path, {"path": tmp_path, "n": 2})
    assert json.loads(path.read_text()) == {"path": str(tmp_path), "n": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["record.json"]


# -- the row writer --------------------------------------------------------------------------------------------


def create_output(path, width=8, height=40, count=2):
    profile = dict(OUTPUT_OPTIONS, width=width, height=height, count=count, dtype="float32", crs="EPSG:32633",
                   transform=rasterio.transform.from_origin(X0, Y0, 10, 10), nodata=float("nan"))
    with rasterio.open(path, "w", **profile):
        pass
    return path


def rows_of(first, count, width=8, bands=2):
    """Rows ``first`` .. ``first + count - 1`` whose values say which band and row they are."""
    b, r, _ = np.indices((bands, count, width))
    return (1000 * b + r + first).astype(np.float32)


def test_row_writer_writes_whole_blocks_until_the_last_rows(tmp_path):
    path = create_output(tmp_path / "out.tif")  # 40 rows in blocks of 16
    durable = []
    writer = RowWriter(path, on_durable=durable.append)
    assert writer.block == 16
    for first in range(0, 36, 6):
        writer.add(first, rows_of(first, 6))
    assert durable == [16, 32]  # rows 32-35 wait: only whole blocks, so no block is written twice
    writer.add(36, rows_of(36, 4))
    assert durable == [16, 32, 40]  # the raster's last rows complete the last block
    writer.close()
    assert durable == [16, 32, 40]
    with rasterio.open(path) as src:
        np.testing.assert_array_equal(src.read(), rows_of(0, 40))


def test_row_writer_close_writes_a_short_rest(tmp_path):
    path = create_output(tmp_path / "out.tif")
    durable = []
    writer = RowWriter(path, on_durable=durable.append)
    writer.add(0, rows_of(0, 20))
    assert durable == [16]
    writer.close()  # e.g. the encoder's last rows when the tiles end early
    assert durable == [16, 20]
    with rasterio.open(path) as src:
        data = src.read()
    np.testing.assert_array_equal(data[:, :20], rows_of(0, 20))
    assert np.isnan(data[:, 20:]).all()


def test_row_writer_skips_rows_already_written_and_refuses_a_gap(tmp_path):
    path = create_output(tmp_path / "out.tif")
    writer = RowWriter(path, next_row=16)  # resuming: rows 0-15 are on disk
    writer.add(10, rows_of(10, 10))  # rows 10-15 are skipped, 16-19 queued
    with pytest.raises(ValueError, match="rows must come in order: expected row 20, got 25"):
        writer.add(25, rows_of(25, 2))
    writer.add(20, rows_of(20, 20))
    writer.close()
    with rasterio.open(path) as src:
        data = src.read()
    np.testing.assert_array_equal(data[:, 16:], rows_of(16, 24))
    assert np.isnan(data[:, :16]).all()  # never rewritten


WRITER_SCRIPT = """
import sys, time
import numpy as np
from pathlib import Path
from engine.raster_writing import RowWriter

path, total = Path(sys.argv[1]), int(sys.argv[2])
writer = RowWriter(path, on_durable=lambda rows: print(rows, flush=True))
width = int(sys.argv[3])
for first in range(0, total, 5):
    k = min(5, total - first)
    b, r, _ = np.indices((2, k, width))
    writer.add(first, (1000 * b + r + first).astype(np.float32))
    time.sleep(0.01)
writer.close()
print("DONE", flush=True)
"""


def test_rows_reported_durable_survive_a_sigkill(tmp_path):
    width, height = 64, 2000
    path = create_output(tmp_path / "out.tif", width=width, height=height)
    process = subprocess.Popen([sys.executable, "-c", textwrap.dedent(WRITER_SCRIPT), str(path), str(height),
                                str(width)], cwd=REPO, stdout=subprocess.PIPE, text=True)
    durable = 0
    for line in process.stdout:
        if line.startswith("DONE"):
            break
        durable = int(line)
        if durable >= 800:  # while it goes on writing the next blocks
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the writer finished before it could be killed"
    assert 800 <= durable < height
    with rasterio.open(path) as src:
        on_disk = src.read(window=Window(0, 0, width, durable))
    np.testing.assert_array_equal(on_disk, rows_of(0, durable, width))


def test_a_fingerprint_notices_truncation_replacement_and_edits(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4096)  # 1 MiB
    recorded = file_fingerprint(path)
    assert fingerprint_change(path, recorded) == ""
    with open(path, "r+b") as f:
        f.truncate(500_000)
    assert "size changed from 1048576 to 500000" in fingerprint_change(path, recorded)
    path.write_bytes(bytes(reversed(range(256))) * 4096)  # same size, other content
    assert fingerprint_change(path, recorded) == "it was modified after it was written"
    assert "no fingerprint" in fingerprint_change(path, None)
    path.unlink()
    assert fingerprint_change(path, recorded) == "it no longer exists"


def test_row_writer_records_a_checksum_of_the_rows_it_made_durable(tmp_path):
    path = tmp_path / "rows.tif"
    with rasterio.open(path, "w", **dict(OUTPUT_OPTIONS, width=8, height=40, count=2, dtype="float32")):
        pass
    chunks = []
    writer = RowWriter(path, on_durable=lambda rows: chunks.append(dict(writer.last_chunk)))
    data = np.arange(2 * 40 * 8, dtype=np.float32).reshape(2, 40, 8)
    writer.add(0, data[:, :20])
    writer.add(20, data[:, 20:])
    writer.close()
    assert [(c["first_row"], c["rows"]) for c in chunks] == [(0, 16), (16, 24)]  # whole blocks, then the rest
    with rasterio.open(path) as src:
        for chunk in chunks:
            rows = src.read(window=rasterio.windows.Window(0, chunk["first_row"], 8, chunk["rows"]))
            assert rows_checksum(rows) == chunk["crc32"]


def test_half_float_rows_are_read_back_and_their_checksum_is_what_a_resume_reads(tmp_path):
    from engine.catalog import OUTPUT_FORMATS

    path = tmp_path / "half.tif"
    with rasterio.open(path, "w", **dict(OUTPUT_FORMATS["float16"].options, width=8, height=40, count=2,
                                         dtype="float32", nodata=float("nan"))):
        pass
    chunks = []
    writer = RowWriter(path, on_durable=lambda rows: chunks.append(dict(writer.last_chunk)))
    assert writer.half
    data = np.random.default_rng(0).standard_normal((2, 40, 8)).astype(np.float32) * 100
    writer.add(0, data[:, :20])
    writer.close()
    with rasterio.open(path) as src:
        stored = src.read()
        for chunk in chunks:
            rows = stored[:, chunk["first_row"]:chunk["first_row"] + chunk["rows"]]
            assert rows_checksum(rows) == chunk["crc32"]
    assert not np.array_equal(stored[:, :20], data[:, :20])  # rounded to half floats...
    np.testing.assert_allclose(stored[:, :20], data[:, :20], rtol=2 ** -10)  # ...within their precision


def test_features_beyond_the_half_float_range_are_refused_naming_output_format(tmp_path):
    from engine.catalog import OUTPUT_FORMATS

    path = tmp_path / "half.tif"
    with rasterio.open(path, "w", **dict(OUTPUT_FORMATS["float16"].options, width=8, height=16, count=1,
                                         dtype="float32", nodata=float("nan"))):
        pass
    data = np.ones((1, 16, 8), np.float32)
    data[0, 3, 4] = 1e6
    with pytest.raises(ParameterError, match="OUTPUT_FORMAT: feature values reach 1e\\+06.*choose float32"):
        RowWriter(path).add(0, data)
