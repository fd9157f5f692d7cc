"""Model files: a zip of a JSON record read first and a skops payload; saved atomically; pickles (old IAMAP
models, crafted files) and unknown types refused without running anything unless TRUST_MODEL says so."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import zipfile

import joblib
import numpy as np
import pytest

from engine.cluster import run_cluster
from engine.errors import ParameterError
from engine.estimator_registry import library_versions
from engine.events import Reporter
from engine.fitting import apply_model, fit_model
from engine.model_files import RECORD_NAME, load_model, save_model

from ..fixtures import opener_payload, regions_raster, skops_archive


def fitted(tool="cluster", method="KMeans", bands=4):
    values = np.random.default_rng(0).normal(size=(300, bands)).astype(np.float32)
    model, _ = fit_model(tool, method, {}, 3, 0, values, Reporter())
    model["metadata"].update(tool=tool, method=method, bands=list(range(1, bands + 1)), band_count=bands,
                             input="in.tif", versions=library_versions(method))
    return model, values


def rewritten(path, target, payload: bytes | None = None, **record_changes):
    """A copy of the model file ``path`` with another payload (its sha256 updated) and record fields."""
    with zipfile.ZipFile(path) as archive:
        record = json.loads(archive.read(RECORD_NAME))
        payload = archive.read(record["payload"]["name"]) if payload is None else payload
    record["payload"]["sha256"] = hashlib.sha256(payload).hexdigest()
    record.update(record_changes)
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr(RECORD_NAME, json.dumps(record))
        archive.writestr(record["payload"]["name"], payload)
    return str(target)


class MarkerPickle:
    """Unpickling it creates a file: stands for any code a pickle runs on load."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return open, (self.marker, "w")


def messages(reporter, kind="warning"):
    return " ".join(e.get("message", "") for e in reporter.events if e["type"] == kind)


def test_saved_model_loads_and_gives_the_same_labels(tmp_path):
    model, values = fitted()
    path = save_model(model, str(tmp_path / "m.iamapmodel"))
    assert not (tmp_path / "m.iamapmodel.tmp").exists()
    loaded = load_model(str(path), "cluster", 4)
    np.testing.assert_array_equal(loaded["pipeline"].predict(values), model["pipeline"].predict(values))
    with pytest.raises(ParameterError, match=r"SAVE_MODEL: m.joblib: give a file name ending in \.iamapmodel"):
        save_model(model, str(tmp_path / "m.joblib"))


def test_a_model_file_is_a_json_record_beside_a_skops_payload(tmp_path):
    model, _ = fitted("reduction", "PCA")
    path = save_model(model, str(tmp_path / "pca.iamapmodel"))
    with zipfile.ZipFile(path) as archive:
        assert sorted(archive.namelist()) == ["iamap-model.json", "pipeline.skops"]
        record = json.loads(archive.read("iamap-model.json"))
        payload = archive.read("pipeline.skops")
    assert (record["format"], record["format_version"], record["tool"], record["method"]) == \
        ("iamap-model", 2, "reduction", "PCA")
    assert record["band_count"] == 4 and record["versions"]["skops"] and record["apply"] == "transform"
    assert record["payload"]["sha256"] == hashlib.sha256(payload).hexdigest()
    assert "sklearn.decomposition._pca.PCA" in record["payload"]["types"]


def test_loading_refuses_another_tool_another_version_other_bands_and_foreign_files(tmp_path):
    model, _ = fitted()
    path = str(save_model(model, str(tmp_path / "m.iamapmodel")))
    with pytest.raises(ParameterError, match="LOAD_MODEL: m.iamapmodel is a cluster model .KMeans.; load it in "
                                             "iamap:cluster, not iamap:reduction"):
        load_model(path, "reduction", 4)
    with pytest.raises(ParameterError, match=r"BANDS: the model in m.iamapmodel was fitted on 4 band\(s\) \(bands "
                                             r"1, 2, 3, 4 of in.tif\); the selected input has 3"):
        load_model(path, "cluster", 3)
    model["metadata"]["versions"]["scikit-learn"] = "0.24.2"
    old = str(save_model(model, str(tmp_path / "old.iamapmodel")))
    with pytest.raises(ParameterError, match="LOAD_MODEL: old.iamapmodel was saved with scikit-learn 0.24.2; this "
                                             "IAMAP environment has scikit-learn 1.*Fit the model again"):
        load_model(old, "cluster", 4)
    joblib.dump([1, 2, 3], tmp_path / "list.joblib")
    with pytest.raises(ParameterError, match="LOAD_MODEL: list.joblib is not an IAMAP model file"):
        load_model(str(tmp_path / "list.joblib"), "cluster", 4, trust=True)
    (tmp_path / "text.joblib").write_text("hello")
    with pytest.raises(ParameterError, match="LOAD_MODEL: cannot read text.joblib as an IAMAP model"):
        load_model(str(tmp_path / "text.joblib"), "cluster", 4, trust=True)
    with pytest.raises(ParameterError, match="LOAD_MODEL: .*missing.iamapmodel does not exist"):
        load_model(str(tmp_path / "missing.iamapmodel"), "cluster", 4)
    with zipfile.ZipFile(tmp_path / "other.iamapmodel", "w") as archive:
        archive.writestr("schema.json", "{}")  # a zip, but not IAMAP's (a bare skops file, for instance)
    with pytest.raises(ParameterError, match="LOAD_MODEL: other.iamapmodel is not an IAMAP model file .* no "
                                             "iamap-model.json"):
        load_model(str(tmp_path / "other.iamapmodel"), "cluster", 4, trust=True)


@pytest.mark.parametrize("name", ["evil.joblib", "evil.pkl", "evil", "evil.iamapmodel"])
def test_a_crafted_pickle_given_to_load_model_never_runs(tmp_path, name):
    raster, _ = regions_raster(tmp_path / "f.tif", 16, 16, bands=4)
    marker = tmp_path / "marker"
    (tmp_path / name).write_bytes(pickle.dumps(MarkerPickle(marker)))
    pickle.loads((tmp_path / name).read_bytes())  # the file really runs code when unpickled...
    assert marker.exists()
    marker.unlink()
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(ParameterError) as error:  # ...and LOAD_MODEL does not unpickle it
        run_cluster({"INPUT": str(raster), "OUTPUT": str(tmp_path / "c.tif"), "LOAD_MODEL": str(tmp_path / name)},
                    Reporter())
    message = str(error.value)
    assert message.startswith(f"LOAD_MODEL: {name} is not an IAMAP model file (.iamapmodel)")
    assert "runs whatever code it holds when loaded" in message and "leave LOAD_MODEL empty" in message
    assert "SAVE_MODEL to a .iamapmodel file" in message and "TRUST_MODEL" in message
    assert not marker.exists()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before  # inputs untouched, no output


def test_trust_model_loads_an_old_joblib_model_and_logs_what_it_trusted(tmp_path):
    model, values = fitted()
    old = {"format": "iamap-model", "format_version": 1, "pipeline": model["pipeline"],
           "estimator": model["estimator"], "metadata": model["metadata"]}  # a model of IAMAP 0.1
    joblib.dump(old, tmp_path / "old.joblib", compress=3)
    with pytest.raises(ParameterError, match=r"LOAD_MODEL: old.joblib is not an IAMAP model file \(.iamapmodel\)\. "
                                             r"A model saved by an earlier IAMAP \(IAMAP 1.0.2's "
                                             r"\.pkl, 0\.1's \.joblib\)"):
        load_model(str(tmp_path / "old.joblib"), "cluster", 4)
    reporter = Reporter()
    loaded = load_model(str(tmp_path / "old.joblib"), "cluster", 4, trust=True, reporter=reporter)
    np.testing.assert_array_equal(apply_model(loaded, values), apply_model(model, values))
    digest = hashlib.sha256((tmp_path / "old.joblib").read_bytes()).hexdigest()
    assert messages(reporter) == (f"TRUST_MODEL: loading {tmp_path / 'old.joblib'} (sha256 {digest}) as a pickle, "
                                  f"which runs any code it holds.")


def test_a_1_0_2_pkl_model_is_refused_without_trust_model_and_wrapped_with_it(tmp_path):
    from sklearn.cluster import KMeans

    _, values = fitted()
    pkl = tmp_path / "kmeans.pkl"
    estimator = KMeans(n_clusters=2, n_init=1, random_state=0).fit(values)
    joblib.dump(estimator, pkl)  # as IAMAP 1.0.2 saved it: the bare estimator
    with pytest.raises(ParameterError) as error:
        load_model(str(pkl), "cluster", 4)
    assert "IAMAP 1.0.2's .pkl" in str(error.value) and "Fit the model again (leave LOAD_MODEL empty) and save it " \
        "with SAVE_MODEL" in str(error.value) and "set TRUST_MODEL" in str(error.value)
    reporter = Reporter()
    model = load_model(str(pkl), "cluster", 4, trust=True, reporter=reporter)
    digest = hashlib.sha256(pkl.read_bytes()).hexdigest()
    assert f"TRUST_MODEL: trusted {pkl} (sha256 {digest}): a pickle of IAMAP 1.0.2's bare KMeans. Applied as 1.0.2 " \
           "applied it: a StandardScaler fitted on every valid pixel" in messages(reporter)
    meta = model["metadata"]
    assert (meta["tool"], meta["method"], meta["apply"], meta["band_count"]) == ("cluster", "KMeans", "predict", 4)
    assert meta["source"]["sha256"] == digest and [name for name, _ in model["pipeline"].steps] == ["scale",
                                                                                                    "estimator"]
    assert model["pipeline"][-1].cluster_centers_.tolist() == estimator.cluster_centers_.tolist()
    with pytest.raises(ParameterError, match=r"LOAD_MODEL: kmeans.pkl holds IAMAP 1.0.2's bare KMeans, fitted on 4 "
                                             r"band\(s\); the selected input has 3\. Select the 4 bands it was "
                                             r"fitted on \(Bands \(default: all\)\), or fit a new model\."):
        load_model(str(pkl), "cluster", 3, trust=True)
    with pytest.raises(ParameterError, match=r"kmeans.pkl holds IAMAP 1.0.2's bare KMeans, a cluster model: load it "
                                             r"in iamap:cluster, not iamap:reduction\."):
        load_model(str(pkl), "reduction", 4, trust=True)


def test_a_1_0_2_ml_pkl_keeps_its_class_codes_and_text_classes_or_other_pickles_are_refused(tmp_path):
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.preprocessing import StandardScaler

    _, values = fitted()
    codes = (values[:, 0] > 0).astype(int) + (values[:, 1] > 0)  # 1.0.2's pandas.factorize codes 0, 1, 2
    joblib.dump(RandomForestClassifier(5, random_state=0).fit(values, codes), tmp_path / "rf.pkl")
    model = load_model(str(tmp_path / "rf.pkl"), "ml", 4, trust=True)
    assert model["metadata"]["classes"] == {"codes": [0, 1, 2], "names": ["0", "1", "2"]}
    assert model["metadata"]["task"] == "classification" and len(model["pipeline"].steps) == 1  # 1.0.2: no scaler
    joblib.dump(RandomForestClassifier(5).fit(values, np.where(codes, "forest", "water")), tmp_path / "text.pkl")
    with pytest.raises(ParameterError, match=r"LOAD_MODEL: text.pkl holds IAMAP 1.0.2's bare RandomForestClassifier, "
                                             r"whose classes \(forest, water\) are not the whole-number class codes"):
        load_model(str(tmp_path / "text.pkl"), "ml", 4, trust=True)
    joblib.dump(StandardScaler().fit(values), tmp_path / "scaler.pkl")  # an estimator, but no tool applies it
    with pytest.raises(ParameterError, match=r"scaler.pkl holds IAMAP 1.0.2's bare StandardScaler, a reduction model:"
                                             r" load it in iamap:reduction, not iamap:cluster\."):
        load_model(str(tmp_path / "scaler.pkl"), "cluster", 4, trust=True)
    joblib.dump({"weights": [1, 2]}, tmp_path / "dict.pkl")
    with pytest.raises(ParameterError, match=r"dict.pkl is not an IAMAP model file \(written by SAVE_MODEL\), nor "
                                             r"a scikit-learn estimator or pipeline .* it holds a dict"):
        load_model(str(tmp_path / "dict.pkl"), "cluster", 4, trust=True)


def test_a_container_with_a_type_outside_the_allowlist_is_refused_unless_trusted(tmp_path):
    model, _ = fitted()
    good = save_model(model, str(tmp_path / "m.iamapmodel"))
    marker = tmp_path / "marker"
    crafted = rewritten(good, tmp_path / "crafted.iamapmodel", opener_payload(marker))
    with pytest.raises(ParameterError, match="LOAD_MODEL: crafted.iamapmodel holds types that IAMAP does not load: "
                                             "builtins.open. Building them could run code, so nothing was loaded"):
        load_model(crafted, "cluster", 4)
    assert not marker.exists()
    evaluator = rewritten(good, tmp_path / "eval.iamapmodel", skops_archive(
        {"__class__": "eval", "__module__": "builtins", "__loader__": "FunctionNode"}))
    with pytest.raises(ParameterError, match="LOAD_MODEL: eval.iamapmodel holds types .*: builtins.eval"):
        load_model(evaluator, "cluster", 4)
    # TRUST_MODEL builds what the file holds: documented as "it may run code", and so it does
    reporter = Reporter()
    with pytest.raises(ParameterError, match="LOAD_MODEL: cannot read crafted.iamapmodel .* holds no fitted pipeline"):
        load_model(crafted, "cluster", 4, trust=True, reporter=reporter)
    assert marker.exists()
    digest = hashlib.sha256((tmp_path / "crafted.iamapmodel").read_bytes()).hexdigest()
    assert messages(reporter) == (f"TRUST_MODEL: loading {tmp_path / 'crafted.iamapmodel'} (sha256 {digest}) although "
                                  f"it holds types outside IAMAP's allowlist, which may run code: builtins.open.")


def test_the_record_is_checked_before_the_payload_is_read(tmp_path):
    model, _ = fitted()
    good = save_model(model, str(tmp_path / "m.iamapmodel"))
    garbage = rewritten(good, tmp_path / "g.iamapmodel", b"\x80\x04 not a payload at all")
    with pytest.raises(ParameterError, match="LOAD_MODEL: g.iamapmodel is a cluster model .KMeans.; load it in "
                                             "iamap:cluster"):
        load_model(garbage, "reduction", 4)
    with pytest.raises(ParameterError, match=r"BANDS: the model in g.iamapmodel was fitted on 4 band\(s\)"):
        load_model(garbage, "cluster", 8)
    with pytest.raises(ParameterError, match="LOAD_MODEL: cannot read g.iamapmodel as an IAMAP model: its payload "
                                             "is not a skops archive"):
        load_model(garbage, "cluster", 4)
    altered = rewritten(good, tmp_path / "a.iamapmodel", format_version=1)
    with pytest.raises(ParameterError, match="LOAD_MODEL: a.iamapmodel is an IAMAP model of format 1"):
        load_model(altered, "cluster", 4)


def test_a_failed_write_leaves_no_temporary_file_and_keeps_the_previous_model(tmp_path, monkeypatch):
    model, _ = fitted()
    target = save_model(model, str(tmp_path / "m.iamapmodel"))
    previous = target.read_bytes()

    def full_disk(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(OSError, match="No space left"):
        save_model(fitted(bands=4)[0], str(target))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.iamapmodel"] and target.read_bytes() == previous


def test_a_model_with_types_its_parameters_brought_in_is_saved_with_a_warning_and_loads_only_if_trusted(tmp_path):
    rng = np.random.default_rng(4)
    values = np.concatenate([rng.normal(0, 0.2, (150, 3)), rng.normal(4, 0.2, (150, 3))]).astype(np.float32)
    model, labels = fit_model("cluster", "HDBSCAN", {"metric": "manhattan"}, 3, 0, values, Reporter())
    assert len(set(labels) - {-1}) == 2
    model["metadata"].update(tool="cluster", method="HDBSCAN", bands=[1, 2, 3], band_count=3, input="in.tif",
                             versions=library_versions("HDBSCAN"))
    reporter = Reporter()
    path = str(save_model(model, str(tmp_path / "h.iamapmodel"), reporter))
    assert "SAVE_MODEL: the fitted HDBSCAN holds types IAMAP does not load without TRUST_MODEL (" in messages(reporter)
    assert "ManhattanDistance" in messages(reporter)
    with pytest.raises(ParameterError, match="LOAD_MODEL: h.iamapmodel holds types that IAMAP does not load: "
                                             ".*ManhattanDistance"):
        load_model(path, "cluster", 3)
    reporter = Reporter()
    loaded = load_model(path, "cluster", 3, trust=True, reporter=reporter)
    np.testing.assert_array_equal(apply_model(loaded, values), apply_model(model, values))
    assert "TRUST_MODEL: loading" in messages(reporter) and "ManhattanDistance" in messages(reporter)


def test_a_model_skops_cannot_store_is_refused_naming_save_model_and_leaves_no_file(tmp_path):
    model, _ = fitted()
    model["pipeline"][0].hook = (n for n in range(3))  # a generator: no safe way to store it
    with pytest.raises(ParameterError, match="SAVE_MODEL: the fitted KMeans cannot be saved: skops cannot store it "
                                             "safely .*Leave SAVE_MODEL empty"):
        save_model(model, str(tmp_path / "m.iamapmodel"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.0])
def test_a_model_file_cut_short_or_emptied_is_said_damaged_not_a_pickle(tmp_path, keep):
    model, _ = fitted()
    whole = save_model(model, str(tmp_path / "m.iamapmodel")).read_bytes()
    (tmp_path / "cut.iamapmodel").write_bytes(whole[: int(len(whole) * keep)])
    for trust in (False, True):  # not read as a pickle with TRUST_MODEL either
        with pytest.raises(ParameterError) as info:
            load_model(str(tmp_path / "cut.iamapmodel"), "cluster", 4, trust=trust)
        message = str(info.value)
        size = int(len(whole) * keep)
        assert message.startswith(f"LOAD_MODEL: cut.iamapmodel is a damaged IAMAP model file ({size:,} bytes; ")
        assert ("it is empty" if keep == 0 else "its end is missing") in message
        assert "Copy it again from where it was saved, or fit the model again" in message
        assert "pickle" not in message and "TRUST_MODEL" not in message


def test_a_model_file_altered_inside_is_said_damaged(tmp_path):
    model, _ = fitted()
    whole = bytearray(save_model(model, str(tmp_path / "m.iamapmodel")).read_bytes())
    whole[len(whole) // 3] ^= 0xFF  # one byte of the payload flipped: the zip's CRC no longer matches
    (tmp_path / "flipped.iamapmodel").write_bytes(bytes(whole))
    with pytest.raises(ParameterError, match=r"LOAD_MODEL: flipped.iamapmodel is a damaged IAMAP model file \(.*Bad "
                                             r"CRC-32"):
        load_model(str(tmp_path / "flipped.iamapmodel"), "cluster", 4)
