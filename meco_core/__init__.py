"""meco_core: ROS-free MECO library (models, losses, metrics, data, training, evaluation, benchmarks).

    >>> from meco_core import build_model
    >>> model = build_model("meco", backbone="vit_tiny_patch16_224", num_classes=5)
"""
from .models import build_model, list_models, model_config_keys

__all__ = ["build_model", "list_models", "model_config_keys"]
__version__ = "0.1.0"
