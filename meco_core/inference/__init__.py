"""Running a trained model: the `Estimator` (one RGB frame in, metric depth and labels out
at the input size), post-processing of network outputs, and deployment (ONNX export with
metadata, ONNX Runtime / TensorRT backends, slim checkpoints, TorchScript).

    >>> from meco_core.inference import Estimator
    >>> pred = Estimator("checkpoints/meco_golf.pt").predict(rgb)

Modules: `estimator` (sizes, backend choice, the forward pass), `postprocess` (outputs to
the output size, invalid values marked), `runtime` (backends, providers, engine caches),
`onnx_export` (ONNX files + parity check), `export` (slim checkpoints, TorchScript).
"""
from __future__ import annotations

from .estimator import (PRECISIONS, UPSAMPLE_MODES, DeviceUnavailableError, Estimator, EstimatorOptions,
                        NonFiniteInputError, Prediction, RawOutput, check_inference_size, check_precision,
                        find_checkpoint, resolve_device)

__all__ = ["Estimator", "EstimatorOptions", "Prediction", "RawOutput", "DeviceUnavailableError",
           "NonFiniteInputError", "PRECISIONS", "UPSAMPLE_MODES", "check_inference_size", "check_precision",
           "find_checkpoint", "resolve_device"]
