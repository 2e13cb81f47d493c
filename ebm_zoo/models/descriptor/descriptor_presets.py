"""Presets of the descriptor family: data only, registered in __init__.py (see ebm_zoo.presets.registry)."""

PRESETS = {
    "descriptor_brick": {
        "description": "Generative ConvNet (Xie et al. 2016) learned from the scikit-image brick texture, 64x64 gray",
        "config": "descriptor_texture",
        "dataset": "textures/brick",
        "image_size": 64,
        "weights": "package",
        "sha256": "e92ae92139cc0fe00c8d11602810291824ba53a8950885fefea39864f419fff3",
    },
}
