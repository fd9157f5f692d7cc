"""What RESUME may reuse from disk: only a complete output that is still the file written, and only the rows
of a partial output that read back as they were written."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest

from engine.resume import Manifest, manifest_path, reusable_output

from ..fixtures import Interrupt, interrupt_after, random_raster
from .test_encoder import encode, read


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def messages(reporter, kind="warning"):
    return [e["message"] for e in reporter.events if e["type"] == kind]


@pytest.fixture
def scene(tmp_path):
    """A 57-output-row input (3 block rows of 16 + 9), its reference encoding and its checksum."""
    path = random_raster(tmp_path / "in.tif", 300, 900, seed=3)
    reference = read(encode(tmp_path, path, "ref.tif")[0]["OUTPUT"])[0]
    return path, reference, sha256(path)


def test_a_truncated_complete_output_is_encoded_again(tmp_path, scene):
    path, reference, checksum = scene
    out = tmp_path / "ref.tif"
    size = out.stat().st_size
    with open(out, "r+b") as f:
        f.truncate(size // 2)
    outputs, reporter = encode(tmp_path, path, "ref.tif")
    assert outputs["reused"] is False
    assert any(f"size changed from {size} to {size // 2}" in m and "encoding it again" in m
               for m in messages(reporter))
    np.testing.assert_array_equal(read(out)[0], reference)
    assert sha256(path) == checksum


def test_a_complete_output_replaced_by_a_file_of_the_same_size_is_encoded_again(tmp_path, scene):
    path, reference, _ = scene
    out = tmp_path / "ref.tif"
    encode(tmp_path, path, "other.tif", STRIDE=112)
    other = tmp_path / "other.tif"
    data = bytearray(out.read_bytes())
    data[-4096:] = bytes(4096)  # same size, other content at the end
    out.write_bytes(bytes(data))
    outputs, reporter = encode(tmp_path, path, "ref.tif")
    assert outputs["reused"] is False and any("modified after it was written" in m for m in messages(reporter))
    np.testing.assert_array_equal(read(out)[0], reference)
    assert other.exists()


def test_an_untouched_complete_output_is_reused(tmp_path, scene):
    path, _, _ = scene
    before = (tmp_path / "ref.tif").stat().st_mtime_ns
    outputs, reporter = encode(tmp_path, path, "ref.tif")
    assert outputs["reused"] is True and not messages(reporter, "warning")[1:]  # only the random-weights warning
    assert (tmp_path / "ref.tif").stat().st_mtime_ns == before


def interrupted_at_row_32(tmp_path, path, monkeypatch):
    """Encode ``path`` into out.tif, interrupted once rows 0-31 are durable; the partial file and manifest stay."""
    restore = interrupt_after(monkeypatch, 32)
    with pytest.raises(Interrupt):
        encode(tmp_path, path, "out.tif")
    restore()
    return tmp_path / "out.partial.tif"


def test_a_manifest_claiming_more_rows_than_written_starts_over(tmp_path, scene, monkeypatch):
    path, reference, checksum = scene
    interrupted_at_row_32(tmp_path, path, monkeypatch)
    manifest = tmp_path / "out.partial.json"
    state = json.loads(manifest.read_text())
    assert state["rows_done"] == 32 and state["last_chunk"]["first_row"] == 16
    manifest.write_text(json.dumps({**state, "rows_done": 48}))  # edited up: rows 32-47 were never written
    outputs, reporter = encode(tmp_path, path, "out.tif")
    assert any("cannot be continued" in m and "Starting over" in m for m in messages(reporter))
    assert not any("Resuming" in m for m in messages(reporter, "text"))
    assert outputs["tiles_encoded"] == outputs["tiles"]
    np.testing.assert_array_equal(read(outputs["OUTPUT"])[0], reference)
    assert sha256(path) == checksum


def test_a_truncated_partial_file_starts_over(tmp_path, scene, monkeypatch):
    path, reference, _ = scene
    partial = interrupted_at_row_32(tmp_path, path, monkeypatch)
    import rasterio

    with rasterio.open(partial) as src:  # cut the file inside the second block row (rows 16-31, durable)
        cut = int(src.get_tag_item("BLOCK_OFFSET_0_1", "TIFF", bidx=1)) + 100
    with open(partial, "r+b") as f:
        f.truncate(cut)
    outputs, reporter = encode(tmp_path, path, "out.tif")
    assert any("cannot be continued" in m for m in messages(reporter))
    np.testing.assert_array_equal(read(outputs["OUTPUT"])[0], reference)


def test_rows_changed_on_disk_are_not_trusted(tmp_path, scene, monkeypatch):
    path, _, _ = scene
    partial = interrupted_at_row_32(tmp_path, path, monkeypatch)
    import rasterio
    from rasterio.windows import Window

    with rasterio.open(partial, "r+") as dst:  # someone edits a durable row
        dst.write(np.zeros((dst.count, 1, dst.width), np.float32), window=Window(0, 20, dst.width, 1))
    rows, chunk, problem = Manifest(partial, json.loads(manifest_path(partial).read_text())["hash"], 57).resume_point()
    assert rows == 0 and "differ from what was written" in problem


def test_a_record_of_other_parameters_is_not_a_reason_to_warn(tmp_path, scene):
    out = tmp_path / "ref.tif"
    assert reusable_output(out, "another hash") == (False, "")
    shutil.copy(out, tmp_path / "copy.tif")
    assert reusable_output(tmp_path / "copy.tif", "anything") == (False, "")  # no record beside it


def test_a_partial_of_other_parameters_is_started_over_saying_what_changed(tmp_path, scene, monkeypatch):
    path, _, _ = scene
    interrupted_at_row_32(tmp_path, path, monkeypatch)
    outputs, reporter = encode(tmp_path, path, "out.tif", SIZE=112)
    assert ["The interrupted run's out.partial.tif cannot be continued: it was written with SIZE 224 -> 112, "
            "STRIDE 224 -> 112. Starting over."] == [m for m in messages(reporter) if "interrupted" in m]
    assert outputs["tiles_encoded"] == outputs["tiles"]
