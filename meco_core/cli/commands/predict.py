"""`meco predict --checkpoint C INPUT [INPUT ...] --out DIR`: run a model on images, folders of
images or videos, and write what the node would publish for each frame.

Per frame NAME (a file's stem; a video's stem and frame index):
  DIR/panels/NAME.jpg   input | depth (near warm, far cool, log scale) | classes, side by side
  DIR/depth/NAME.png    metric depth, 16-bit millimetres, 0 = no valid depth (the dataset format's)
  DIR/labels/NAME.png   class ids, 8-bit, 255 = no valid prediction
  DIR/depth/NAME.npy    float32 metres, NaN invalid (with --depth-npy)
and DIR/predictions.json: the model, the camera each frame was read with, and per frame its
median depth, the share of each class and the time it took. A file that cannot be read is
reported, counted and skipped (exit code 1 at the end); the rest are still written.

Depth is metric for the camera that took the frames: pass --intrinsics (fx,fy,cx,cy of the
frames as given; frames of another size count as the same camera resized) or --hfov (degrees,
principal point at the centre); without either, the model's default camera applies and the
depth scale is only as right as that guess (README "Camera-aware depth").
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from meco_core.defaults import BACKENDS
from meco_core.errors import MecoError
from meco_core.sizes import parse_size

PANEL_TILE_WIDTH = 640  # each panel tile is shrunk to at most this width (a 1080p frame's panel stays viewable)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("predict", help="run a model on images, folders or videos: depth + class images",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders of images, video files")
    p.add_argument("--checkpoint", required=True, help="checkpoint (.pt) or an exported .onnx (with --backend)")
    p.add_argument("--out", required=True, help="output folder (created)")
    camera = p.add_mutually_exclusive_group()
    camera.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY",
                        help="the camera of the frames as given, in their pixels")
    camera.add_argument("--hfov", type=float, default=None, metavar="DEG",
                        help="horizontal field of view of the camera, principal point at the centre")
    p.add_argument("--every", type=int, default=1, help="videos: keep every N-th frame")
    p.add_argument("--size", type=parse_size, default=None,
                   help="network input HxW (default: the checkpoint's recorded input size)")
    p.add_argument("--backend", default="torch", choices=BACKENDS)
    p.add_argument("--device", default="auto", help="auto | cpu | cuda[:n]")
    p.add_argument("--threads", type=int, default=None, help="CPU threads")
    p.add_argument("--depth-npy", action="store_true", help="also write float32 metres as .npy")
    p.add_argument("--no-panels", action="store_true", help="skip the side-by-side pictures")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def _panel(rgb: Any, depth_rgb: Any, labels_rgb: Any) -> Any:
    import cv2
    import numpy as np

    h, w = rgb.shape[:2]
    scale = min(1.0, PANEL_TILE_WIDTH / w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    tiles = [cv2.resize(t, size, interpolation=cv2.INTER_AREA) if scale < 1 else t for t in (rgb, depth_rgb, labels_rgb)]
    return np.concatenate(tiles, axis=1)


def _frame_summary(pred: Any, class_names: list[str]) -> dict[str, Any]:
    import numpy as np

    out: dict[str, Any] = {}
    if pred.depth_m is not None:
        valid = np.isfinite(pred.depth_m)
        out["depth_median_m"] = round(float(np.median(pred.depth_m[valid])), 3) if valid.any() else None
        out["depth_valid_pct"] = round(100.0 * float(valid.mean()), 2)
    if pred.labels is not None:
        counts = np.bincount(pred.labels.ravel(), minlength=256)
        out["class_pct"] = {n: round(100.0 * counts[i] / pred.labels.size, 2) for i, n in enumerate(class_names)}
    return out


def _check_args(args: argparse.Namespace) -> None:
    """Option errors before any model loads: one line each."""
    if args.every < 1:
        raise MecoError(f"--every must be >= 1, got {args.every}")
    if args.hfov is not None and not 1.0 <= args.hfov < 180.0:
        raise MecoError(f"--hfov must be in [1, 180) degrees, got {args.hfov}")
    args.intrinsics_parsed = None
    if args.intrinsics is not None:
        from meco_core.camera import parse_intrinsics

        try:
            args.intrinsics_parsed = parse_intrinsics(args.intrinsics)
        except ValueError as exc:
            raise MecoError(f"--intrinsics: {exc}") from None


class OutputWriter:
    """Writes one frame's files under the output folder (the layout in the module docstring)."""

    def __init__(self, out: Path, est: Any, depth_npy: bool, panels: bool) -> None:
        self.out, self.est, self.depth_npy, self.panels = out, est, depth_npy, panels
        for sub in ("depth", "labels") + (("panels",) if panels else ()):
            (out / sub).mkdir(parents=True, exist_ok=True)

    def write(self, name: str, rgb: Any, pred: Any) -> None:
        import cv2
        import numpy as np

        from meco_core.data.format import depth_to_mm
        from meco_core.visualize import colorize_depth

        depth_rgb = labels_rgb = np.zeros_like(rgb)
        if pred.depth_m is not None:
            cv2.imwrite(str(self.out / "depth" / f"{name}.png"), depth_to_mm(pred.depth_m)[0])
            if self.depth_npy:
                np.save(self.out / "depth" / f"{name}.npy", pred.depth_m.astype(np.float32))
            depth_rgb = colorize_depth(pred.depth_m, self.est.max_depth)
        if pred.labels is not None:
            cv2.imwrite(str(self.out / "labels" / f"{name}.png"), pred.labels)
            labels_rgb = self.est.class_set.colorize(pred.labels)
        if self.panels:
            panel = _panel(rgb, depth_rgb, labels_rgb)
            cv2.imwrite(str(self.out / "panels" / f"{name}.jpg"), cv2.cvtColor(panel, cv2.COLOR_RGB2BGR),
                        [cv2.IMWRITE_JPEG_QUALITY, 90])


def _camera_text(args: argparse.Namespace, first: dict[str, Any]) -> str:
    if args.hfov is not None:
        return "hfov %g deg" % args.hfov
    if args.intrinsics is not None and first:
        return f"intrinsics {args.intrinsics} for frames of {first['size'][1]}x{first['size'][0]}"
    return "the model's default camera"


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch
    from tqdm import tqdm

    from meco_core.camera import camera_of_frame
    from meco_core.inference import Estimator
    from meco_core.inference.frame_files import count_frames, expand_inputs, iter_frames
    from meco_core.inference.runtime import BackendError
    from meco_core.models.checkpoint import CheckpointError

    _check_args(args)
    try:
        files = expand_inputs(args.inputs)
    except ValueError as exc:
        raise MecoError(str(exc)) from None
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        est = Estimator(args.checkpoint, device=args.device, backend=args.backend, threads=args.threads,
                        inference_size=args.size)
    except (CheckpointError, BackendError, ValueError) as exc:
        raise MecoError(str(exc)) from exc
    out = Path(args.out)
    writer = OutputWriter(out, est, args.depth_npy, panels=not args.no_panels)
    frames: list[dict[str, Any]] = []
    failed: list[dict[str, str]] = []
    first: dict[str, Any] = {}
    bar = tqdm(iter_frames(files, args.every), total=count_frames(files, args.every), unit="frame",
               disable=args.no_progress, desc="predict")
    for item in bar:
        if item.rgb is None:
            failed.append({"name": item.name, "source": item.source, "error": item.error or "unreadable"})
            bar.write(f"meco predict: skipped {item.source}: {item.error}")
            continue
        size = item.rgb.shape[:2]
        first.setdefault("size", size)  # --intrinsics describe frames of the first frame's size
        intrinsics = camera_of_frame(size, args.hfov, args.intrinsics_parsed, first["size"])
        t0 = time.perf_counter()
        pred = est.predict(item.rgb, intrinsics=intrinsics)
        row: dict[str, Any] = {"name": item.name, "source": item.source, "size": [size[1], size[0]],
                               "camera": pred.camera, "ms": round(1000.0 * (time.perf_counter() - t0), 1)}
        if intrinsics is not None:
            row["intrinsics"] = [round(float(v), 3) for v in intrinsics]
        frames.append({**row, **_frame_summary(pred, list(est.class_set.names))})
        writer.write(item.name, item.rgb, pred)
    summary = {"checkpoint": str(args.checkpoint), "backend": args.backend, "class_names": list(est.class_set.names),
               "camera": _camera_text(args, first), "frames": frames, "failed": failed,
               "ms_median": round(float(np.median([f["ms"] for f in frames])), 1) if frames else None}
    (out / "predictions.json").write_text(json.dumps(summary, indent=2))
    print(f"meco predict: {len(frames)} frames -> {out} (depth/, labels/{'' if args.no_panels else ', panels/'}, "
          f"predictions.json); camera: {summary['camera']}; median {summary['ms_median']} ms per frame"
          + (f"; {len(failed)} unreadable, skipped" if failed else ""))
    if not frames:
        raise MecoError(f"none of the {len(failed)} inputs could be read (first: {failed[0]['source']}: "
                        f"{failed[0]['error']})" if failed else "no frames in the inputs")
    return 1 if failed else 0
