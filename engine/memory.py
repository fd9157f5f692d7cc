"""Memory: how much is available, what the encoder needs at least, and which parameters to lower when a tool
runs out.

The encoder's estimate is a lower bound, from the sizes of the arrays it holds at once (no model activations,
no allocator overhead, no library caches): a run is refused up front only when even that does not fit, so a
refusal is never wrong; a run that passes may still run out, and the worker's message then names
:data:`MEMORY_PARAMETERS`.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import ParameterError

#: The parameters that drive each tool's memory, named when it runs out (the first is the one to try first).
MEMORY_PARAMETERS = {
    "encoder": ("SIZE", "BATCH_SIZE"),
    "reduction": ("SAMPLE_SIZE",),
    "cluster": ("SAMPLE_SIZE",),
    "similarity": ("RANDOM_SAMPLES",),
    "ml": ("SAMPLE_PER_POLYGON",),
}

#: Bytes per tile value held on the host: float32 pixel plus its bool validity.
_VALUE_BYTES = 4 + 1
#: Float32 copies of a batch made while normalising it (scaled and masked) before the model.
_NORMALISATION_COPIES = 2
_GIB = 2**30


def out_of_memory_message(tool: str) -> str:
    """What the worker says when ``tool`` runs out of memory: the parameters to lower."""
    names = MEMORY_PARAMETERS.get(tool, ())
    lower = " or ".join(names) if names else "the extent processed"
    return (f"Out of memory in IAMAP's {tool} tool. Lower {lower} and run again, or close other programs that use "
            "a lot of memory.")


def is_out_of_memory(exc: BaseException) -> bool:
    """Whether ``exc`` is an allocation failure: ``MemoryError``, or torch's (``torch.cuda.OutOfMemoryError``,
    or a RuntimeError of the CPU allocator), recognised without importing torch."""
    text = str(exc).lower()
    return (isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError"
            or "out of memory" in text or "can't allocate memory" in text)


def available_memory() -> int | None:
    """Bytes a new allocation can get on the host, or None when unknown.

    Linux: ``MemAvailable`` of ``/proc/meminfo``, capped by a cgroup v2 limit (a container's ``memory.max``
    minus ``memory.current``). Elsewhere: the free physical pages (``os.sysconf``). One or two small file reads.
    """
    available = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                available = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if available is None:
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (AttributeError, OSError, ValueError):
            return None
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            available = min(available, int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    return max(0, available)


def device_memory(device) -> int | None:
    """Free bytes on a CUDA ``device``; None for the CPU or when torch cannot tell."""
    if getattr(device, "type", "cpu") != "cuda":
        return None
    try:
        # deferred: torch takes seconds to import, and only the steps that compute with it need it
        import torch

        return int(torch.cuda.mem_get_info(device)[0])
    except Exception:  # an old driver or a busy device: no check rather than a wrong one
        return None


def encoder_memory(band_count: int, grid) -> tuple[int, int, int]:
    """Least bytes the encoder holds at once, from its arrays: (strips, host bytes per tile of a batch, bytes per
    tile where the model runs).

    strips
        Two strips of tiles (one being read, one whose tiles wait in the queue): ``band_count`` x ``SIZE`` rows x
        the strip width (the tiles' span), float32 values and bool validity. Independent of BATCH_SIZE.
    per tile, host
        The tile stacked into the batch (values and validity).
    per tile, model device
        The stacked tile there and its normalised float32 copies (on the CPU, the same memory as the host's).
    """
    strip_width = (grid.cols - 1) * grid.stride + grid.size
    tile_values = band_count * grid.size * grid.size
    strips = 2 * band_count * grid.size * strip_width * _VALUE_BYTES
    return strips, tile_values * _VALUE_BYTES, tile_values * (_VALUE_BYTES + 4 * _NORMALISATION_COPIES)


def check_encoder_memory(band_count: int, grid, batch_size: int, device, input_size) -> None:
    """Refuse a SIZE or BATCH_SIZE whose least memory (:func:`encoder_memory`) exceeds what is available, on the
    host and, for a GPU, on the device.

    The parameter named is BATCH_SIZE when a smaller batch would fit, otherwise SIZE.
    """
    strips, stacked, normalised = encoder_memory(band_count, grid)
    if getattr(device, "type", "cpu") == "cpu":
        budgets = [("memory", available_memory(), strips, normalised)]
    else:
        budgets = [("memory", available_memory(), strips, stacked),
                   ("GPU memory", device_memory(device), 0, normalised)]
    batch = min(batch_size, grid.count)  # batches never hold more tiles than there are
    strip_width = (grid.cols - 1) * grid.stride + grid.size
    for what, available, fixed, per_tile in budgets:
        needed = fixed + batch * per_tile
        if available is None or needed <= available:
            continue
        fitting_batch = int((available - fixed) // per_tile) if available > fixed else 0
        size_help = (f"tiles are resized to the model's {input_size[0]}x{input_size[1]} input anyway, so a SIZE near "
                     "that loses little")
        detail = (f"{band_count} band(s), tiles of {grid.size}x{grid.size} px read in strips {grid.size} rows high "
                  f"and {strip_width} px wide, {batch} tile(s) per batch")
        if batch > 1 and fitting_batch >= 1:
            raise ParameterError("BATCH_SIZE", f"{batch} tiles of {grid.size}x{grid.size} px need at least "
                                               f"{needed / _GIB:.1f} GiB of {what} ({detail}), but "
                                               f"{available / _GIB:.1f} GiB is available. Use BATCH_SIZE "
                                               f"{fitting_batch} or less, or a smaller SIZE ({size_help}).")
        larger = (f"{grid.size} px is larger than the {grid.width}x{grid.height} px area to encode, so each tile is "
                  f"mostly padding; a SIZE of {max(grid.width, grid.height)} or less covers it. "
                  if grid.size > max(grid.width, grid.height) else "")
        raise ParameterError("SIZE", f"{larger}tiles of {grid.size}x{grid.size} px need at least "
                                     f"{needed / _GIB:.1f} GiB of {what} ({detail}), but "
                                     f"{available / _GIB:.1f} GiB is available. Use a smaller SIZE ({size_help}).")
