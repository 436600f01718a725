"""`meco export`: a slim deployable checkpoint (default), a TorchScript module, an ONNX
file (fixed input size, metadata inside, verified against torch with ONNX Runtime), or a
TensorRT engine cache (`--format tensorrt-cache --out DIR`: the ONNX export and the engine
built ahead of time on the vehicle's GPU, so the node's first start does not wait for it;
run the node with `engine_cache_dir: DIR`)."""
from __future__ import annotations

import argparse
import json

from meco_core.errors import MecoError
from meco_core.sizes import parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="slim deployable checkpoint or TorchScript", description=__doc__)
    p.add_argument("--checkpoint", required=True, action="append",
                   help="source checkpoint (e.g. runs/meco_golf/best.pt); repeat it to ship the uniform weight "
                        "average of several snapshots of one model (checkpoint format only)")
    p.add_argument("--out", required=True, help="destination file")
    p.add_argument("--format", choices=("checkpoint", "torchscript", "onnx", "tensorrt-cache"), default="checkpoint")
    p.add_argument("--fp32", action="store_true", help="checkpoint: keep fp32 weights (default fp16 storage)")
    p.add_argument("--size", type=parse_size, default=None,
                   help="torchscript/onnx: input HxW (default: the checkpoint's recorded input size, else 240x320)")
    p.add_argument("--fp16", action="store_true", help="onnx: float16 weights and activations (GPU providers); "
                   "tensorrt-cache: an fp16 engine (default fp32)")
    p.add_argument("--device", default="cuda", help="tensorrt-cache: the GPU to build for (default cuda = cuda:0)")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="checkpoint: record the HxW the model is meant to run at (its evaluation size)")
    p.set_defaults(handler=run)


def run(args) -> int:

    from meco_core.models.checkpoint import CheckpointError
    from meco_core.inference.export import export_torchscript, slim_checkpoint
    from meco_core.inference.runtime import BackendError

    try:
        if args.format == "checkpoint":
            result = slim_checkpoint(args.checkpoint, args.out, half=not args.fp32, input_size=args.input_size)
        elif len(args.checkpoint) > 1:
            raise CheckpointError(f"--format {args.format} takes one --checkpoint; export an average as a checkpoint "
                                  "first")
        else:
            if args.format == "tensorrt-cache":
                from meco_core.inference.runtime import build_engine_cache

                result = build_engine_cache(args.checkpoint[0], args.out, args.size,
                                            "fp16" if args.fp16 else "fp32", args.device)
            elif args.format == "onnx":
                from meco_core.inference.onnx_export import export_onnx

                result = export_onnx(args.checkpoint[0], args.out, args.size, fp16=args.fp16)
            else:
                result = export_torchscript(args.checkpoint[0], args.out, args.size or (240, 320))
    except (CheckpointError, BackendError, RuntimeError) as exc:
        raise MecoError(str(exc)) from exc
    print(json.dumps(result, indent=2))
    return 0
