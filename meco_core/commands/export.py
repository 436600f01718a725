"""`meco export`: a slim deployable checkpoint (default) or a TorchScript module."""
from __future__ import annotations

import argparse
import json

from meco_core.commands.bench import parse_size


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="slim deployable checkpoint or TorchScript", description=__doc__)
    p.add_argument("--checkpoint", required=True, action="append",
                   help="source checkpoint (e.g. runs/meco_golf/best.pt); repeat it to ship the uniform weight "
                        "average of several snapshots of one model (checkpoint format only)")
    p.add_argument("--out", required=True, help="destination file")
    p.add_argument("--format", choices=("checkpoint", "torchscript"), default="checkpoint")
    p.add_argument("--fp32", action="store_true", help="checkpoint: keep fp32 weights (default fp16 storage)")
    p.add_argument("--size", type=parse_size, default=(240, 320), help="torchscript: input HxW (default 240x320)")
    p.add_argument("--input-size", type=parse_size, default=None,
                   help="checkpoint: record the HxW the model is meant to run at (its evaluation size)")
    p.set_defaults(handler=run)


def run(args) -> int:
    import sys

    from meco_core.checkpoint import CheckpointError
    from meco_core.export import export_torchscript, slim_checkpoint

    try:
        if args.format == "checkpoint":
            result = slim_checkpoint(args.checkpoint, args.out, half=not args.fp32, input_size=args.input_size)
        elif len(args.checkpoint) > 1:
            raise CheckpointError("--format torchscript takes one --checkpoint; export an average as a checkpoint first")
        else:
            result = export_torchscript(args.checkpoint[0], args.out, args.size)
    except CheckpointError as exc:
        print(f"meco export: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
