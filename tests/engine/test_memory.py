"""Memory: the available figure, the encoder's up-front estimate naming SIZE or BATCH_SIZE, and the worker's
out-of-memory message naming each tool's memory parameters."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from engine import memory
from engine.errors import ParameterError
from engine.events import Reporter
from engine.memory import MEMORY_PARAMETERS, check_encoder_memory, encoder_memory
from engine.tiling import TileGrid
from engine.worker import run_tool

CPU = SimpleNamespace(type="cpu")
GIB = 2**30


def test_available_memory_is_a_plausible_byte_count():
    available = memory.available_memory()
    assert available is not None and 16 * 2**20 < available < 2**50


def test_the_estimate_counts_strips_and_the_batch():
    grid = TileGrid.create(1000, 1000, 224, 224, 14, 14)  # 5 x 5 tiles, strips 1120 px wide
    strips, stacked, normalised = encoder_memory(3, grid)
    assert strips == 2 * 3 * 224 * 1120 * 5
    assert stacked == 3 * 224 * 224 * 5 and normalised == 3 * 224 * 224 * 13


def test_a_huge_size_is_refused_naming_size(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: 4 * GIB)
    grid = TileGrid.create(500, 500, 40_000, 40_000, 14, 14)  # one tile; strips 40 000 x 40 000 x 3 bands
    with pytest.raises(ParameterError) as info:
        check_encoder_memory(3, grid, 8, CPU, (224, 224))
    message = str(info.value)
    assert info.value.parameter == "SIZE"
    assert message.startswith("SIZE: 40000 px is larger than the 500x500 px area to encode")
    assert "tiles of 40000x40000 px need at least" in message
    assert "but 4.0 GiB is available" in message and "224x224 input" in message


def test_a_batch_that_does_not_fit_is_refused_naming_batch_size_with_one_that_fits(monkeypatch):
    grid = TileGrid.create(2240, 2240, 224, 224, 14, 14)  # 100 tiles
    strips, _, per_tile = encoder_memory(3, grid)
    monkeypatch.setattr(memory, "available_memory", lambda: strips + 10.5 * per_tile)
    check_encoder_memory(3, grid, 10, CPU, (224, 224))  # fits
    with pytest.raises(ParameterError) as info:
        check_encoder_memory(3, grid, 64, CPU, (224, 224))
    assert info.value.parameter == "BATCH_SIZE" and "Use BATCH_SIZE 10 or less" in str(info.value)


def test_on_a_gpu_the_normalised_batch_is_checked_against_the_gpu_memory(monkeypatch):
    grid = TileGrid.create(2240, 2240, 224, 224, 14, 14)
    _, stacked, on_device = encoder_memory(3, grid)
    monkeypatch.setattr(memory, "available_memory", lambda: 100 * GIB)
    monkeypatch.setattr(memory, "device_memory", lambda device: 4.5 * on_device)
    with pytest.raises(ParameterError) as info:
        check_encoder_memory(3, grid, 8, SimpleNamespace(type="cuda"), (224, 224))
    assert info.value.parameter == "BATCH_SIZE" and "of GPU memory" in str(info.value)
    assert "Use BATCH_SIZE 4 or less" in str(info.value) and stacked < on_device


def test_the_batch_never_counts_more_tiles_than_there_are(monkeypatch):
    grid = TileGrid.create(224, 224, 224, 224, 14, 14)  # a single tile
    strips, _, per_tile = encoder_memory(3, grid)
    monkeypatch.setattr(memory, "available_memory", lambda: strips + per_tile)
    check_encoder_memory(3, grid, 10_000, CPU, (224, 224))


def test_an_unknown_available_memory_checks_nothing(monkeypatch):
    monkeypatch.setattr(memory, "available_memory", lambda: None)
    check_encoder_memory(3, TileGrid.create(500, 500, 40_000, 40_000, 14, 14), 8, CPU, (224, 224))


class FakeCudaOutOfMemory(RuntimeError):
    """Stands for ``torch.cuda.OutOfMemoryError`` (recognised by its name, without importing torch)."""


FakeCudaOutOfMemory.__name__ = "OutOfMemoryError"


@pytest.mark.parametrize("tool, failure", [
    ("encoder", MemoryError()),
    ("encoder", FakeCudaOutOfMemory("CUDA out of memory. Tried to allocate 20.00 GiB")),
    ("reduction", RuntimeError("[enforce fail at alloc_cpu.cpp:114] DefaultCPUAllocator: can't allocate memory")),
    ("cluster", MemoryError("Unable to allocate 80. GiB for an array")),
    ("similarity", MemoryError()),
])
def test_out_of_memory_names_the_parameters_that_drive_the_tools_memory(monkeypatch, tool, failure):
    def fail(params, reporter):
        raise failure

    monkeypatch.setattr("engine.worker.resolve_tool", lambda name: fail)
    reporter = Reporter()
    assert run_tool(tool, {}, reporter) == 1
    error = reporter.events[-1]
    assert error["type"] == "error" and error["message"].startswith(f"Out of memory in IAMAP's {tool} tool. Lower ")
    assert all(name in error["message"] for name in MEMORY_PARAMETERS[tool])
    assert error["parameter"] == MEMORY_PARAMETERS[tool][0]


def test_other_runtime_errors_stay_internal_errors(monkeypatch):
    def fail(params, reporter):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr("engine.worker.resolve_tool", lambda name: fail)
    reporter = Reporter()
    run_tool("encoder", {}, reporter)
    assert reporter.events[-1]["message"] == "Internal error in IAMAP's encoder tool: RuntimeError: shape mismatch"
