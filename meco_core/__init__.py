"""meco_core: ROS-free MECO library (models, losses, metrics, data, training, evaluation, benchmarks).

    >>> from meco_core import build_model
    >>> model = build_model("meco", backbone="vit_tiny_patch16_224", num_classes=5)

Model entry points are imported lazily so that light tools (data converters, `meco --help`)
do not pay for importing torch and timm.
"""
from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["build_model", "list_models", "model_config_keys"]


def __getattr__(name: str):
    if name in __all__:
        from . import models

        return getattr(models, name)
    raise AttributeError(f"module 'meco_core' has no attribute {name!r}")
