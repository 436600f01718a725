"""`meco eval --checkpoint C --data DIR [--split val] [--json PATH] [--out DIR] [--size HxW]`.

Prints the paper-style table (depth RMSE, RMSE log, AbsRel, SqRel, delta 1-3, and under it
the same metrics after per-frame median scaling, pred * median(gt)/median(pred), as
self-supervised depth work reports them; per-class IoU and mIoU; FPS at batch 1 measured on
the evaluation passes), writes the metrics as JSON (keys miou (percent), iou_per_class,
rmse, rmse_log, abs_rel, sq_rel, d1, d2, d3, their median-scaled ms_rmse ... ms_d3,
ms_scale_median (median over frames of the scale), depth_bands (by true distance 0-10, 10-20,
20-40, 40-max m: pixels, share, abs_rel, gt_over_pred_median), depth_bands_by_pred (the same, binned
by predicted distance), confusion (pixels; rows ground truth,
columns prediction), per_frame (each frame's AbsRel, median-scaled AbsRel and scale, d1,
mIoU over its classes, mIoU, pixel accuracy; the worst three printed), fps, frames, ...),
a PNG grid (input | predicted depth | predicted segmentation | ground-truth depth |
ground-truth segmentation), confusion.png and per_frame.csv into --out. Images are
evaluated at full resolution unless --size resizes them. The data's classes must equal the
model's or have a registered remap (e.g. CamVid data for a golf-class model).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from meco_core.defaults import BACKENDS, MIN_ISLAND_FRACTION
from meco_core.errors import MecoError
from meco_core.sizes import parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a checkpoint on a dataset: metrics table, JSON, PNG grid",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--checkpoint", required=True,
                   help="checkpoint (.pt) written by meco train, or an .onnx file from meco export (with --backend)")
    p.add_argument("--backend", default="torch", choices=BACKENDS,
                   help="torch (checkpoints), onnxruntime (an exported .onnx, or a checkpoint exported to the cache "
                        "at --size; CPU, or CUDA with --device cuda) or tensorrt (ONNX Runtime's TensorRT provider)")
    p.add_argument("--data", required=True, help="meco-dataset/1 root (or one of its split folders, e.g. ROOT/test)")
    p.add_argument("--split", default=None, help="split to evaluate (default: val, or the folder given as --data)")
    p.add_argument("--json", default=None, help="write metrics here")
    p.add_argument("--out", default=None, help="directory for the PNG grid (eval_grid.png)")
    p.add_argument("--size", type=parse_size, default=None,
                   help="resize inputs to HxW (default: the checkpoint's recorded input size, else full resolution)")
    p.add_argument("--max-frames", type=int, default=None, help="evenly spaced subset of the split")
    p.add_argument("--samples", type=int, default=4, help="rows in the PNG grid")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:n]")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--depth-only", action="store_true",
                   help="ignore the data's labels (evaluate depth of a model whose classes the data lacks)")
    p.add_argument("--keep-aspect", action="store_true",
                   help="run frames at the size's pixel count and their own aspect ratio (torch backend), as "
                        "Estimator(keep_aspect=True), instead of resizing them to the size as the node does")
    p.add_argument("--min-island-fraction", type=float, default=None,
                   help=f"fold ground-class islands smaller than this fraction of the frame, as the Estimator "
                        f"publishes labels (default {MIN_ISLAND_FRACTION}; 0: score the raw arg-max, as before "
                        f"session 22)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import torch

    from meco_core.models.checkpoint import CheckpointError
    from meco_core.data.format import split_folder
    from meco_core.evaluation.confusion import save_confusion
    from meco_core.evaluation.per_frame import save_csv
    from meco_core.evaluation.evaluate import class_set_of, evaluate, format_table, json_safe, load_eval_dataset, save_grid
    from meco_core.inference.runtime import BackendError, RuntimeSpec, load_for_inference

    folder = split_folder(args.data)
    if folder:
        if args.split not in (None, folder[1]):
            raise MecoError(f"--data {args.data} is the {folder[1]!r} split but --split is {args.split!r}; "
                            f"use --data {folder[0]} --split {args.split}")
        args.data, args.split = str(folder[0]), folder[1]
    args.split = args.split or "val"

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise MecoError(f"--device {args.device}: CUDA is not available")
    islands = MIN_ISLAND_FRACTION if args.min_island_fraction is None else args.min_island_fraction
    if not 0.0 <= islands < 1.0:
        raise MecoError(f"--min-island-fraction must be in [0, 1), got {islands}")
    if args.keep_aspect and args.backend != "torch":
        raise MecoError(f"--keep-aspect needs --backend torch: {args.backend} runs one fixed input size")
    try:
        spec = None if args.backend == "torch" else RuntimeSpec(args.backend, args.device, "fp32", args.threads)
        model, ckpt = load_for_inference(args.checkpoint, args.backend, args.threads, spec, args.size)
    except (CheckpointError, BackendError, ValueError, FileNotFoundError) as exc:
        raise MecoError(str(exc)) from exc
    if args.backend == "torch":
        model.to(args.device)
    if args.size is None and ckpt.get("input_size"):
        args.size = tuple(ckpt["input_size"])
    try:
        dataset, class_set = load_eval_dataset(args.data, args.split, class_set_of(ckpt), model.num_classes,
                                               model.max_depth, args.size, depth_only=args.depth_only,
                                               keep_aspect=args.keep_aspect)
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise MecoError(str(exc)) from exc
    result = evaluate(model, dataset, args.device if args.backend == "torch" else "cpu", max_frames=args.max_frames,
                      keep_samples=args.samples if args.out else 0, class_set=class_set,
                      progress=not args.no_progress, min_island_fraction=islands)
    m = result.metrics
    m.update(checkpoint=str(args.checkpoint), data=str(args.data), split=args.split, model=ckpt["model_name"],
             step=ckpt.get("step"), size=list(args.size) if args.size else "full", device=args.device,
             backend=args.backend, min_island_fraction=islands,
             threads=torch.get_num_threads())
    title = (f"{ckpt['model_name']} ({Path(args.checkpoint).name}) on {args.data} [{args.split}], "
             f"{m['frames']} frames, classes {class_set.name}")
    print(format_table(m, class_set.names, title))
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(json_safe(m), indent=2))
    if args.out:
        grid = save_grid(result.samples, class_set, Path(args.out) / "eval_grid.png", model.max_depth)
        print(f"grid: {grid}")
        if m.get("seg_pixels"):
            print(f"confusion: {save_confusion(m['confusion'], class_set.names, Path(args.out) / 'confusion.png', title)}")
        print(f"per frame: {save_csv(m['per_frame'], Path(args.out) / 'per_frame.csv')}")
    return 0
