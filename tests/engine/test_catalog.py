"""The curated lists the QGIS side shows: every backbone exists in the pinned timm / TorchGeo."""

from __future__ import annotations

import timm

from engine import catalog


def test_backbone_keys_are_unique_and_found_by_key():
    assert len(set(catalog.BACKBONE_KEYS)) == len(catalog.BACKBONES)
    assert catalog.backbone(catalog.BACKBONE_KEYS[0]).label.endswith("(default)")
    assert catalog.backbone("no such model") is None


def test_every_curated_backbone_is_a_timm_model_and_torchgeo_weights_exist():
    import torchgeo.models

    for entry in catalog.BACKBONES:
        assert timm.is_model(entry.timm_name), entry.key
        if entry.torchgeo_weights:
            enum_name, member = entry.torchgeo_weights.split(".")
            weights = getattr(getattr(torchgeo.models, enum_name), member)
            assert weights.meta["in_chans"] == 13, entry.key


def test_cluster_labels_cannot_meet():
    assert catalog.NOISE_LABEL != catalog.NODATA_LABEL and catalog.NODATA_LABEL < catalog.NOISE_LABEL < 0


def test_patch_and_input_size_are_those_of_the_model_timm_builds():
    """What the encoder's help states (one output pixel per N x N input pixels) comes from these figures."""
    for entry in catalog.BACKBONES:
        kwargs = {"img_size": entry.img_size} if entry.img_size else {}
        model = timm.create_model(entry.timm_name, pretrained=False, num_classes=0, **kwargs)
        embed = model.patch_embed
        assert tuple(embed.patch_size) == (entry.patch, entry.patch), entry.key
        assert tuple(embed.img_size) == (entry.input_size, entry.input_size), entry.key
    default = catalog.backbone(catalog.BACKBONE_KEYS[0])
    assert default.cell_pixels(224) == 14  # DINOv2 ViT-S/14, 224 px input: 16 x 16 patches of 14 px
