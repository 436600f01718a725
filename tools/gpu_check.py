"""GPU check for the accelerator machine (issue 10): one JSON of what CUDA gives this model.

Runs the model library from the source tree (`PYTHONPATH=.`) with only what that machine
has (torch, timm, onnx, onnxruntime CPU, opencv; no ROS, no installs):
  1. `meco bench` side by side on CUDA in fp32 / fp16 / bf16, channels-last (optionally
     torch.compile) for meco, mlore_reparam, taskexpert (paper ViT-S setting) and each
     shipped checkpoint, at the vehicle size (240x320) and at 720p;
  2. the `Estimator` frame loop on CUDA (uint8 frame in, depth + labels out: resize,
     transfer, forward, post-processing included) for each shipped checkpoint.
Writes $OUT/gpu_check.json (or --out) and prints what it could not measure instead of
failing. Budget: about 5 minutes on one GPU (--quick for a CPU dry run of the script).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from meco_core.defaults import PRECISIONS  # noqa: E402
from meco_core.evaluation.bench import Deployed, benchmark  # noqa: E402
from meco_core.models.checkpoint import build_from_checkpoint  # noqa: E402

CHECKPOINTS = ("checkpoints/meco_golf.pt", "checkpoints/meco_camvid.pt")
NOT_MEASURED = ["perception node over DDS (no ROS on this machine)",
                "TensorRT engines (no TensorRT execution provider in this onnxruntime build)"]


def bench_set(models: dict, size: tuple[int, int], device: str, precisions: list[str], compile: bool,
              repeats: int) -> list[dict]:
    variants, twins = {}, {}
    for name, model in models.items():
        model.to(device)
        for precision in precisions:
            label = f"{name} [{precision}{', compiled' if compile else ''}]"
            variants[label] = Deployed(model, precision, channels_last=device.startswith("cuda"), compile=compile)
            twins[label] = model
    rows = benchmark(variants, size, device, warmup=3, repeats=repeats, twins=twins, progress=False)
    return [r.to_dict() for r in rows]


def estimator_loop(path: str, device: str, size: tuple[int, int], frames: int) -> dict:
    from meco_core.inference import Estimator

    est = Estimator(path, device=device, precision="fp16" if device.startswith("cuda") else "fp32")
    est.warmup(3, size)
    frame = np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8)
    times = []
    for _ in range(frames):
        t = time.perf_counter()
        est.predict(frame)
        times.append((time.perf_counter() - t) * 1e3)
    median = statistics.median(times)
    return {"checkpoint": path, "camera_size": list(size), "inference_size": est.describe()["inference_size"],
            "precision": est.precision, "ms_median": median, "fps": 1e3 / median}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", default=os.environ.get("OUT", "out"))
    parser.add_argument("--quick", action="store_true", help="CPU dry run: tiny sizes, few repeats")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd fp16 models")
    args = parser.parse_args()
    cuda = torch.cuda.is_available()
    device = "cuda" if cuda and not args.quick else "cpu"
    report: dict = {"torch": torch.__version__, "python": platform.python_version(), "device": device,
                    "gpu": torch.cuda.get_device_name(0) if cuda else None, "benchmarks": [], "estimator": [],
                    "not_measured": list(NOT_MEASURED)}
    if not cuda:
        report["not_measured"].append("everything on CUDA: torch.cuda.is_available() is False")
    sizes = [(64, 96)] if args.quick else [(240, 320), (720, 1280)]
    precisions = ["fp32"] if device == "cpu" else list(PRECISIONS)
    repeats = 2 if args.quick else 30
    from meco_core import build_model

    def attempt(what: str, fn) -> None:
        start = time.monotonic()
        try:
            fn()
            print(f"ok   {what} ({time.monotonic() - start:.0f} s)", flush=True)
        except Exception as exc:  # report and go on: one failure must not hide the rest
            report["not_measured"].append(f"{what}: {type(exc).__name__}: {exc}")
            print(f"FAIL {what}: {exc}\n{traceback.format_exc(limit=3)}", flush=True)

    for size in sizes:
        paper = {n: build_model(n, backbone="vit_small_patch16_224").eval() for n in
                 ("meco", "mlore_reparam", "taskexpert")}
        attempt(f"paper models {size}", lambda s=size, m=paper: report["benchmarks"].append(
            {"set": "paper ViT-S", "size": list(s), "rows": bench_set(m, s, device, precisions, False, repeats)}))
        shipped = {p: build_from_checkpoint(REPO / p)[0].prepare_for_inference() for p in CHECKPOINTS
                   if (REPO / p).is_file()}
        attempt(f"shipped checkpoints {size}", lambda s=size, m=shipped: report["benchmarks"].append(
            {"set": "shipped", "size": list(s), "rows": bench_set(m, s, device, precisions, False, repeats)}))
        if args.compile and device == "cuda":
            attempt(f"compiled fp16 {size}", lambda s=size, m=shipped: report["benchmarks"].append(
                {"set": "shipped compiled", "size": list(s), "rows": bench_set(m, s, device, ["fp16"], True, repeats)}))
    for path in CHECKPOINTS:
        if (REPO / path).is_file():
            size = (64, 96) if args.quick else (480, 640)
            attempt(f"estimator {path}", lambda p=path, s=size: report["estimator"].append(
                estimator_loop(str(REPO / p), device, s, 5 if args.quick else 100)))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=2))
    print(f"wrote {out / 'gpu_check.json'}; not measured:\n  " + "\n  ".join(report["not_measured"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
