"""Deployment backends: the checkpoint's ONNX export run by ONNX Runtime behind `Estimator`
and the node, the export cache, and the startup errors where a provider is missing."""
from __future__ import annotations

import logging
import os
import signal

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

import onnxruntime as ort  # noqa: E402

from meco_core.cli import main as meco  # noqa: E402
from meco_core.inference import Estimator  # noqa: E402
from meco_core.inference.runtime import (CPU_PROVIDER, CUDA_PROVIDER, TRT_PROVIDER, BackendError, RuntimeSpec,  # noqa: E402
                               onnx_cache_path, onnx_for, resolve_providers)

HAS_CUDA_EP = CUDA_PROVIDER in ort.get_available_providers()


def _frame(h: int = 120, w: int = 160) -> np.ndarray:
    rng = np.random.default_rng(3)
    img = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    return np.ascontiguousarray(np.kron(img, np.ones((8, 8, 1), np.uint8)))  # blocky: real structure, not noise


def test_onnxruntime_estimator_reproduces_torch(onnx_cache, make_checkpoint) -> None:
    ckpt = make_checkpoint("meco")
    torch_est = Estimator(ckpt, device="cpu")
    ort_est = Estimator(ckpt, device="cpu", backend="onnxruntime", engine_cache_dir=str(onnx_cache))
    assert ort_est.inference_size == torch_est.inference_size == (64, 96)   # the checkpoint's recorded size
    assert ort_est.describe()["device"] == CPU_PROVIDER and ort_est.describe()["backend"] == "onnxruntime"
    a, b = torch_est.predict(_frame()), ort_est.predict(_frame())
    assert a.depth_m.shape == b.depth_m.shape == (120, 160)
    assert np.nanmax(np.abs(a.depth_m - b.depth_m)) < 1e-3
    assert (a.labels == b.labels).mean() > 0.999


def test_onnx_backends_fix_size_and_precision(onnx_cache, make_checkpoint) -> None:
    est = Estimator(make_checkpoint("meco"), device="cpu", backend="onnxruntime", engine_cache_dir=str(onnx_cache))
    assert est.fixed_settings() == {"precision": "fp32", "inference_size": (64, 96)}
    est.configure(inference_size=[0, 0], precision="fp32", upsample="nearest")   # unchanged: accepted
    with pytest.raises(ValueError, match="inference_size is fixed at \\[64, 96\\].*restart"):
        est.configure(inference_size=[32, 48])
    with pytest.raises(ValueError, match="precision is fixed"):
        est.configure(precision="bf16")
    assert Estimator(make_checkpoint("meco"), device="cpu").fixed_settings() == {}


def test_export_cache_reused_and_keyed_by_content(onnx_cache, make_checkpoint) -> None:
    cache = onnx_cache  # the session's: the first export may already be there (then it is reused)
    ckpt = make_checkpoint("meco", seed=0)
    first = onnx_for(ckpt, None, cache_dir=cache)
    stamp = first.stat().st_mtime_ns
    assert first == onnx_cache_path(ckpt, None, cache_dir=cache) and "64x96" in first.name  # the recorded size
    assert onnx_for(ckpt, None, cache_dir=cache) == first and first.stat().st_mtime_ns == stamp
    # where other exports would go (each export is ~10 s: exporting is tested above and in test_onnx_export)
    other_size = onnx_cache_path(ckpt, (32, 48), cache_dir=cache)
    assert other_size != first and "32x48" in other_size.name
    assert onnx_cache_path(ckpt, None, fp16=True, cache_dir=cache) not in (first, other_size)
    retrained = make_checkpoint("meco", seed=1)            # same name pattern, other weights
    os.replace(retrained, ckpt)
    assert onnx_cache_path(ckpt, None, cache_dir=cache) not in (first, other_size)  # new content, new export


def test_onnx_file_given_directly_must_match_the_asked_size(onnx_cache, make_checkpoint) -> None:
    onnx_file = onnx_for(make_checkpoint("meco"), None, cache_dir=onnx_cache)
    est = Estimator(str(onnx_file), device="cpu", backend="onnxruntime")
    assert est.inference_size == (64, 96) and est.class_set.name == "golf"
    with pytest.raises(ValueError, match="exported for 64x96"):
        Estimator(str(onnx_file), device="cpu", backend="onnxruntime", inference_size=(32, 48))


def test_tensorrt_without_a_gpu_or_provider_is_a_clear_error() -> None:
    with pytest.raises(BackendError, match="runs on an NVIDIA GPU.*device: cuda"):
        RuntimeSpec(backend="tensorrt", device="cpu").check()
    if TRT_PROVIDER not in ort.get_available_providers():
        with pytest.raises(BackendError, match="TensorRT.*backend_fallback: true"):
            resolve_providers(RuntimeSpec(backend="tensorrt", device="cuda"))


@pytest.mark.skipif(HAS_CUDA_EP, reason="this onnxruntime has the CUDA provider")
def test_missing_cuda_provider_names_the_package_and_fallback_is_logged(caplog) -> None:
    with pytest.raises(BackendError, match="onnxruntime-gpu"):
        resolve_providers(RuntimeSpec(backend="onnxruntime", device="cuda"))
    with caplog.at_level(logging.WARNING, logger="meco.runtime"):
        providers = resolve_providers(RuntimeSpec(backend="onnxruntime", device="cuda", fallback=True))
    assert providers == [(CPU_PROVIDER, {})]
    assert "running on the CPU provider" in caplog.text


def test_half_precision_on_the_cpu_provider_is_refused() -> None:
    with pytest.raises(BackendError, match="fp16 is not offered.*use fp32"):
        RuntimeSpec(backend="onnxruntime", device="cpu", precision="fp16").check()


def test_random_weight_dev_model_stays_on_torch() -> None:
    with pytest.raises(ValueError, match="runs on backend torch"):
        Estimator(None, model_name="meco", device="cpu", backend="onnxruntime")


def test_tensorrt_cache_export_refuses_before_exporting(tmp_path, make_checkpoint, capsys) -> None:
    if TRT_PROVIDER in ort.get_available_providers():
        pytest.skip("this onnxruntime has TensorRT: the engine would really be built")
    out = tmp_path / "engines"
    assert meco(["export", "--checkpoint", make_checkpoint("meco"), "--format", "tensorrt-cache",
                 "--out", str(out)]) == 2
    assert "TensorRT" in capsys.readouterr().err
    assert not list(out.rglob("*.onnx"))   # refused at once: no slow export first


def test_node_runs_the_onnxruntime_backend_over_dds(onnx_cache, make_checkpoint, ros_side) -> None:
    """The installed node on backend onnxruntime: outputs arrive; a size change is refused."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter
    from rclpy.qos import QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from meco_ros.image_conversion import cv2_to_imgmsg
    from meco_ros.proc import REPO, ros_env, start_node

    ns = f"/meco_backend_test_{os.getpid()}"
    node = start_node(["--params-file", str(REPO / "config" / "golf_cart.yaml"), "-r", f"__ns:={ns}",
                       "-p", f"checkpoint:={make_checkpoint('meco')}", "-p", "backend:=onnxruntime",
                       "-p", "device:=cpu", "-p", "warmup_iterations:=1"],
                      ros_env(MECO_CACHE=str(onnx_cache)))
    try:
        assert node.wait_for("ready", 120), node.output[-3000:]
        assert "backend onnxruntime" in node.output and CPU_PROVIDER in node.output
        workers = 2 if (os.cpu_count() or 1) >= 2 else 1   # the auto rule: two frames in flight on 2+ cores
        assert f"inference: {workers} worker(s)" in node.output
        ros = ros_side("backend_test", namespace=ns)
        client = ros.node
        got: list[Image] = []
        sub = client.create_subscription(Image, "depth", got.append, QoSProfile(depth=5,
                                         reliability=ReliabilityPolicy.RELIABLE))
        pub = client.create_publisher(Image, "image", qos_profile_sensor_data)
        assert ros.wait_matched(sub, pub, timeout=30), "not matched with the node"
        for i in range(200):   # 50 Hz until 8 outputs: both workers busy, outputs must stay in order
            if len(got) >= 8:
                break
            msg = cv2_to_imgmsg(_frame(), "rgb8")
            msg.header.frame_id = "camera"
            msg.header.stamp.sec, msg.header.stamp.nanosec = 1000 + i // 50, (i % 50) * 20_000_000
            pub.publish(msg)
            ros.executor.spin_once(timeout_sec=0.02)   # 50 Hz: the camera's rate, not a wait for an event
        assert got and (got[0].height, got[0].width, got[0].encoding) == (120, 160, "32FC1")
        stamps = [m.header.stamp.sec * 10**9 + m.header.stamp.nanosec for m in got]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps
        result = ros.call(SetParameters, f"{ns}/perception_node/set_parameters", SetParameters.Request(
            parameters=[Parameter("inference_size", value=[32, 48]).to_parameter_msg()])).results[0]
        assert not result.successful and "fixed" in result.reason and "restart" in result.reason
    finally:
        code = node.stop(signal.SIGINT, timeout=30)
    assert code == 0, node.output[-3000:]
