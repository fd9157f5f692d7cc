"""The one translation of a run's parameters: IAMAP 1.0.2's names and values, enum numbers, OUTPUT folders,
unknown names."""

from __future__ import annotations

import pytest

from engine.errors import ParameterError
from engine.parameter_translation import is_legacy_call, translate

#: The encoder parameters of IAMAP 1.0.2's own test (tests/test_encoder.py there), OUTPUT aside.
ENCODER_1_0_2 = {"BACKBONE_CHOICE": "", "BACKBONE_OPT": 0, "BANDS": None, "BATCH_SIZE": 1, "CKPT": "", "CRS": None,
                 "CUDA": True, "CUDA_ID": 0, "EXTENT": None, "FEAT_OPTION": True, "MERGE_METHOD": 0, "PAUSES": 0,
                 "QUANT": False, "REMOVE_TEMP_FILES": True, "RESOLUTION": None, "SIZE": 224, "STRIDE": 224,
                 "TEMP_FILES_CLEANUP_FREQ": 1000, "WORKERS": 0, "JSON_PARAM": "NULL", "OUT_DTYPE": 0}


def test_1_0_2_encoder_test_parameters_become_the_model_and_file_1_0_2_used(tmp_path):
    t = translate("encoder", {**ENCODER_1_0_2, "INPUT": "/data/test.tif", "OUTPUT": str(tmp_path)})
    assert t.legacy
    assert t.params["BACKBONE"] == "vit_base_patch16_224.dino"  # what 1.0.2's index 0 ran
    assert t.params["MERGE_METHOD"] == "first" and t.params["DEVICE"] == "auto"
    assert t.params["OUTPUT"] == str(tmp_path / "test-merged.tif")
    assert not set(t.params) - {"INPUT", "BANDS", "BATCH_SIZE", "CKPT", "CUDA_ID", "EXTENT", "SIZE", "STRIDE",
                                "BACKBONE", "MERGE_METHOD", "DEVICE", "OUTPUT", "NORMALIZATION", "PRECISION"}
    for alias, new in (("BACKBONE_OPT", "BACKBONE"), ("CUDA", "DEVICE"), ("CRS", "TARGET_CRS")):
        assert sum(w.startswith(alias) and new in w for w in t.warnings) == 1, (alias, t.warnings)
    for dropped in ("QUANT", "PAUSES", "WORKERS", "FEAT_OPTION", "JSON_PARAM"):
        assert sum(w.startswith(f"{dropped} (IAMAP 1.0.2) has no equivalent") for w in t.warnings) == 1


@pytest.mark.parametrize("index, params", [(3, {"BACKBONE_NAME": "vit_small_patch8_224.dino"}),
                                           (4, {"BACKBONE": "vit_tiny_patch16_224.augreg_in21k"}),
                                           (6, {"BACKBONE_NAME": "samvit_base_patch16.sa1b"})])
def test_backbone_opt_is_read_by_1_0_2s_list(index, params):
    t = translate("encoder", {"INPUT": "a.tif", "OUTPUT": "b.tif", "BACKBONE_OPT": str(index)})
    assert {k: t.params[k] for k in params} == params


def test_backbone_choice_wins_over_backbone_opt_as_in_1_0_2():
    t = translate("encoder", {"INPUT": "a.tif", "OUTPUT": "b.tif", "BACKBONE_OPT": 2, "BACKBONE_CHOICE": "vit_x"})
    assert t.params["BACKBONE_NAME"] == "vit_x" and "BACKBONE" not in t.params


@pytest.mark.parametrize("params, parameter, words", [
    ({"QUANT": True}, "QUANT", "would change the result"),
    ({"COMPRESS": True}, "COMPRESS", "OUTPUT_FORMAT"),
    ({"JSON_PARAM": "/p.json"}, "JSON_PARAM", "pass them in the script"),
    ({"BACKBONE_OPT": 2}, "BACKBONE_OPT", "DOFA"),
    ({"MERGE_METHOD": 4, "CUDA": False}, "MERGE_METHOD", "'sum'"),
    ({"MERGE_METHOD": 9}, "MERGE_METHOD", "0 to 6"),
    ({"MERGE_METHOD": "median"}, "MERGE_METHOD", "choose one of average"),
    ({"CUDA": True, "DEVICE": "cpu"}, "CUDA", "give only DEVICE"),
    ({"BACKBONE_OPT": 12}, "BACKBONE_OPT", "not one of IAMAP 1.0.2's values"),
])
def test_values_that_cannot_be_honoured_are_refused_naming_the_parameter(params, parameter, words):
    with pytest.raises(ParameterError) as error:
        translate("encoder", {"INPUT": "a.tif", "OUTPUT": "b.tif", **params})
    assert error.value.parameter == parameter and words in str(error.value)


def test_enum_numbers_follow_todays_order_unless_the_call_is_1_0_2s():
    today = translate("encoder", {"INPUT": "a.tif", "OUTPUT": "b.tif", "MERGE_METHOD": "0", "DEVICE": 1})
    assert (today.params["MERGE_METHOD"], today.params["DEVICE"]) == ("average", "cpu") and not today.legacy
    # a 1.0.2 script with no other sign of its age meant 1.0.2's entry: both readings are named (DEVICE: no list)
    assert today.warnings == ["MERGE_METHOD='0' read as 'average' (the order qgis_process help shows); in IAMAP "
                              "1.0.2's list it was 'first'. Give the name to be unambiguous."]
    assert not translate("encoder", {"INPUT": "a.tif", "OUTPUT": "b.tif", "MERGE_METHOD": "average"}).warnings
    old = translate("encoder", {"INPUT": "a.tif", "OUTPUT": "b.tif", "MERGE_METHOD": 0, "PAUSES": 0})
    assert old.params["MERGE_METHOD"] == "first"
    assert any("MERGE_METHOD=0 read in IAMAP 1.0.2's order" in w for w in old.warnings)
    translated = translate("ml", {"INPUT": "a.tif", "OUTPUT": "b.tif", "METHOD": 1})
    assert translated.params["METHOD"] == "ExtraTreesClassifier"
    assert translate("ml", {"INPUT": "a.tif", "OUTPUT": "b.tif", "METHOD": 1, "DO_KFOLDS": False}).params == \
        {"INPUT": "a.tif", "OUTPUT": "b.tif", "METHOD": "AdaBoostRegressor", "CV": "none", "RANDOM_SEED": 42}


def test_a_method_number_scikit_learn_versions_disagree_on_is_refused():
    with pytest.raises(ParameterError, match="give the name instead"):
        translate("reduction", {"INPUT": "a.tif", "OUTPUT": "b.tif", "MAIN_PARAM": 2, "METHOD": 22})
    assert translate("reduction", {"INPUT": "a.tif", "OUTPUT": "b.tif", "SUBSET": 5, "METHOD": 25}).params["METHOD"] \
        == "UMAP"
    with pytest.raises(ParameterError, match="unknown method 'DictionaryLearning'"):  # 1.0.2 had it, today not
        translate("reduction", {"INPUT": "a.tif", "OUTPUT": "b.tif", "SUBSET": 5, "METHOD": 0})


def test_output_folder_gets_1_0_2s_file_and_model_names(tmp_path):
    t = translate("cluster", {"INPUT": "/d/s.tif", "OUTPUT": str(tmp_path), "MAIN_PARAM": 4,
                              "SK_PARAM": "{'n_init': 2}"})
    assert t.params == {"INPUT": "/d/s.tif", "OUTPUT": str(tmp_path / "cluster.tif"), "N_CLUSTERS": 4,
                        "SK_PARAM": '{"n_init": 2}', "RANDOM_SEED": 42,
                        "SAVE_MODEL": str(tmp_path / "kmeans.iamapmodel")}
    off = translate("reduction", {"INPUT": "/d/s.tif", "OUTPUT": str(tmp_path), "SAVE_MODEL": False})
    assert off.params["OUTPUT"] == str(tmp_path / "proj.tif") and "SAVE_MODEL" not in off.params
    assert translate("similarity", {"INPUT": "s.tif", "OUTPUT": "out/", "TEMPLATE": "t.shp"}).params["OUTPUT"] == \
        "out/similarity.tif"
    # a file name is today's call, whatever else it says
    assert translate("cluster", {"INPUT": "s.tif", "OUTPUT": "c.tif"}).params == {"INPUT": "s.tif", "OUTPUT": "c.tif"}


def test_ml_folds_from_a_field_and_the_1_0_2_defaults(tmp_path):
    t = translate("ml", {"INPUT": "s.tif", "OUTPUT": str(tmp_path), "TEMPLATE": "t.shp", "GT_COL": "Type",
                         "FOLD_COL": "fold"})
    assert t.params["CV"] == "column" and t.params["RANDOM_SEED"] == 42
    assert t.params["SAVE_MODEL"] == str(tmp_path / "randomforestclassifier.iamapmodel")
    with pytest.raises(ParameterError, match="RANDOM_SAMPLES.*SAMPLE_PER_POLYGON"):
        translate("ml", {"INPUT": "s.tif", "OUTPUT": "o.tif", "RANDOM_SAMPLES": 2000})


def test_a_pkl_saved_by_this_iamap_under_1_0_2s_name_is_found(tmp_path):
    (tmp_path / "kmeans.iamapmodel").write_bytes(b"x")
    t = translate("cluster", {"INPUT": "s.tif", "OUTPUT": "c.tif", "LOAD": str(tmp_path / "kmeans.pkl")})
    assert t.params["LOAD_MODEL"] == str(tmp_path / "kmeans.iamapmodel")


def test_unknown_names_are_warned_once_and_dropped():
    t = translate("diagnostics", {"OUTPUT": "r.json", "VERBOSE": True})
    assert t.params == {"OUTPUT": "r.json"} and len(t.warnings) == 1 and t.warnings[0].startswith("VERBOSE is not")
    assert not is_legacy_call("encoder", {"INPUT": "a.tif", "OUTPUT": "b.tif"})


def test_save_model_as_1_0_2s_checkbox_in_any_spelling_is_a_checkbox(tmp_path):
    for value in (0, "0", "no", False):
        translated = translate("reduction", {"INPUT": "in.tif", "OUTPUT": f"{tmp_path}/", "SAVE_MODEL": value})
        assert "SAVE_MODEL" not in translated.params and translated.legacy
    saved = translate("reduction", {"INPUT": "in.tif", "OUTPUT": f"{tmp_path}/", "SAVE_MODEL": 1})
    assert saved.params["SAVE_MODEL"] == str(tmp_path / "pca.iamapmodel")


def test_1_0_2s_stride_and_full_fit_are_said(tmp_path):
    encoder = translate("encoder", {"INPUT": "in.tif", "OUTPUT": f"{tmp_path}/", "SIZE": 448})
    assert encoder.params["STRIDE"] == 224  # 1.0.2 stepped 224 px whatever the tile size
    small = translate("encoder", {"INPUT": "in.tif", "OUTPUT": f"{tmp_path}/", "SIZE": 112})
    assert "STRIDE" not in small.params and any("leaving pixels between them" in w for w in small.warnings)
    cluster = translate("cluster", {"INPUT": "in.tif", "OUTPUT": f"{tmp_path}/"})
    assert any(w.startswith("SUBSET: IAMAP 1.0.2 fitted on every pixel") for w in cluster.warnings)


def test_backbone_choice_null_leaves_backbone_opt_in_charge(tmp_path):
    translated = translate("encoder", {"INPUT": "in.tif", "OUTPUT": f"{tmp_path}/", "BACKBONE_OPT": 4,
                                       "BACKBONE_CHOICE": "NULL"})
    assert translated.params["BACKBONE"] == "vit_tiny_patch16_224.augreg_in21k"
    assert not any("BACKBONE_OPT (IAMAP 1.0.2) was not used" in w for w in translated.warnings)
