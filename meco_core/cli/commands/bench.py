"""`meco bench`: params, GFLOPs, latency and FPS of models side by side (or an N/k ablation)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from meco_core.defaults import BACKENDS, BENCH_SIZE, PRECISIONS
from meco_core.errors import MecoError
from meco_core.sizes import parse_size


def int_list(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("bench", help="complexity benchmark: params, GFLOPs, latency, FPS",
                              description=__doc__)
    p.add_argument("--models", default="meco,mlore,mlore_reparam,taskexpert",
                   help="comma-separated registry names (default: %(default)s)")
    p.add_argument("--backbone", default="vit_small_patch16_224")
    p.add_argument("--size", type=parse_size, default=None,
                   help=f"input HxW (default: the --checkpoint's recorded input size, the size `meco eval` and the "
                        f"node run it at; else {BENCH_SIZE[0]}x{BENCH_SIZE[1]})")
    p.add_argument("--channels", type=int, default=None, help="decoder width C (default: model default)")
    p.add_argument("--num-classes", type=int, default=5)
    p.add_argument("--ref", default="mlore", help="reference model for ratios (default: %(default)s)")
    p.add_argument("--experts", type=int_list, default=None, help="MECO ablation: N list, paired with --topk")
    p.add_argument("--topk", type=int_list, default=None, help="MECO ablation: k list, paired with --experts")
    p.add_argument("--checkpoint", action="append", default=None,
                   help="benchmark the model stored in this checkpoint; repeat it to compare checkpoints side by "
                        "side in one run (ratios to the first)")
    p.add_argument("--device", default="cpu", help="cpu | cuda[:n]")
    p.add_argument("--precision", default="fp32",
                   help=f"comma-separated autocast precisions timed side by side: {', '.join(PRECISIONS)} "
                        "(torch backend)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (CUDA)")
    p.add_argument("--compile", action="store_true", help="torch.compile each model (first calls slow)")
    p.add_argument("--backend", default="torch",
                   help=f"comma-separated backends timed side by side: {', '.join(BACKENDS)} (each model "
                        "exported to ONNX at --size and run by ONNX Runtime on --device with the same thread count; "
                        "tensorrt: its TensorRT provider, a GPU)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", default=None, help="write {'rows': [...]} here")
    p.set_defaults(handler=run)


def _build_set(args) -> tuple[dict, dict[str, dict], str | None, str, list]:
    """(models, extras, reference, title, recorded input sizes of the checkpoints)."""
    from meco_core import build_model
    from meco_core.models.checkpoint import build_from_checkpoint

    common = {"backbone": args.backbone, "num_classes": args.num_classes}
    if args.channels:
        common["channels"] = args.channels
    if args.checkpoint:
        models, sizes = {}, []
        for path in args.checkpoint:
            model, ckpt = build_from_checkpoint(path)
            models[f"{ckpt['model_name']} ({path})"] = model
            sizes.append(tuple(ckpt["input_size"]) if ckpt.get("input_size") else None)
        first = next(iter(models)) if len(models) > 1 else None
        return models, {}, first, f"checkpoint{'s' if len(models) > 1 else ''} {', '.join(args.checkpoint)}", sizes
    if args.experts or args.topk:
        if not (args.experts and args.topk) or len(args.experts) != len(args.topk):
            raise MecoError("--experts and --topk are paired lists of equal length, e.g. 5,10,15,20 and 3,6,9,12")
        models, extras = {}, {}
        for n, k in zip(args.experts, args.topk):
            label = f"meco N={n} k={k}"
            models[label] = build_model("meco", num_experts=n, top_k=k, **common)
            extras[label] = {"experts": n, "topk": k}
        return models, extras, None, "MECO N/k ablation", []
    names = [m.strip() for m in args.models.split(",") if m.strip()]
    models = {n: build_model(n, **common) for n in names}
    return models, {}, args.ref if args.ref in models else None, "models side by side", []


def resolve_size(given: tuple[int, int] | None, recorded: list) -> tuple[int, int]:
    """--size, else the checkpoints' recorded input size, else BENCH_SIZE. Why: a checkpoint timed
    at another size than the one it runs at (eval, the node) is a misleading reference."""
    if given is not None:
        return given
    known = {s for s in recorded if s is not None}
    if len(known) > 1:
        raise MecoError(f"the checkpoints record different input sizes ({', '.join(f'{h}x{w}' for h, w in sorted(known))}); "
                        "pass --size to time them at one")
    return known.pop() if known else BENCH_SIZE


def _with_backends(models: dict, extras: dict, ref: str | None, backends: list[str], size: tuple[int, int],
                   workdir: str, device: str) -> tuple[dict, dict, dict, str | None]:
    """Each model once per backend ('name [backend]'); ONNX copies exported at `size` into
    `workdir`, timed with the torch model as their params/FLOPs twin. A backend whose
    provider is missing is refused before anything is exported."""
    import copy

    import torch

    from meco_core.inference.onnx_export import export_model_onnx
    from meco_core.inference.runtime import OnnxRuntimeModel, RuntimeSpec, resolve_providers

    specs = {b: RuntimeSpec(b, device, "fp32", torch.get_num_threads()) for b in backends if b != "torch"}
    providers = {b: resolve_providers(spec) for b, spec in specs.items()}  # refuse before exporting

    out, out_extras, twins = {}, {}, {}
    for name, model in models.items():
        for backend in backends:
            label = f"{name} [{backend}]"
            if backend == "torch":
                out[label] = model
            else:
                path = Path(workdir) / f"{len(out)}.onnx"
                export_model_onnx(copy.deepcopy(model), {"model_name": getattr(model, "name", name),
                                          "model_config": getattr(model, "config", {}), "class_set": None}, path, size)
                out[label], twins[label] = OnnxRuntimeModel(path, spec=specs[backend], providers=providers[backend]), model
            out_extras[label] = {**extras.get(name, {}), "backend": backend}
    first_ref = f"{ref} [{backends[0]}]" if ref else (next(iter(out)) if len(out) > 1 else None)
    return out, out_extras, twins, first_ref


def _deployed(models: dict, extras: dict, ref: str | None, precisions: list[str], channels_last: bool,
              compile: bool) -> tuple[dict, dict, dict, str | None]:
    """Each model once per precision ('name [fp16]'), wrapped as a deployment runs it."""
    import copy

    from meco_core.evaluation.bench import Deployed

    out, out_extras, twins = {}, {}, {}
    for name, model in models.items():
        for precision in precisions:
            label = name if precisions == ["fp32"] else f"{name} [{precision}]"
            out[label] = Deployed(copy.deepcopy(model) if len(precisions) > 1 else model, precision, channels_last,
                                  compile)
            twins[label] = model
            out_extras[label] = {**extras.get(name, {}), "precision": precision, "channels_last": channels_last,
                                 "compile": compile}
    if ref:
        ref = ref if precisions == ["fp32"] else f"{ref} [{precisions[0]}]"
    return out, out_extras, twins, ref or (next(iter(out)) if len(out) > 1 else None)


def run(args) -> int:
    import tempfile

    import torch
    from rich.console import Console

    from meco_core.evaluation.bench import add_ratios, benchmark, render_table

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise MecoError(f"--device {args.device}: CUDA is not available on this machine; use --device cpu")
    backends = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = sorted(set(backends) - set(BACKENDS))
    if unknown or not backends:
        raise MecoError(f"--backend {args.backend!r}: choose from {', '.join(BACKENDS)}")
    precisions = [p.strip() for p in args.precision.split(",") if p.strip()]
    if not precisions or set(precisions) - set(PRECISIONS):
        raise MecoError(f"--precision {args.precision!r}: choose from {', '.join(PRECISIONS)}")
    if backends != ["torch"] and (precisions != ["fp32"] or args.channels_last or args.compile):
        raise MecoError("--precision/--channels-last/--compile apply to the torch backend; time backends at fp32")
    models, extras, ref, what, recorded = _build_set(args)
    args.size = resolve_size(args.size, recorded)
    twins: dict = {}
    with tempfile.TemporaryDirectory(prefix="meco_bench_") as workdir:
        if backends != ["torch"]:
            models, extras, twins, ref = _with_backends(models, extras, ref, backends, args.size, workdir,
                                                        args.device)
        elif precisions != ["fp32"] or args.channels_last or args.compile:
            models, extras, twins, ref = _deployed(models, extras, ref, precisions, args.channels_last, args.compile)
        rows = benchmark(models, args.size, args.device, args.warmup, args.repeats, extras, twins=twins)
    add_ratios(rows, ref)
    h, w = args.size
    title = (f"{what}: {args.backbone if not args.checkpoint else ''} {h}x{w}, batch 1, {args.device}, "
             f"{torch.get_num_threads()} threads, median of {args.repeats}")
    Console(width=max(120, Console().width)).print(render_table(rows, ref, title))
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        payload = {"size": [h, w], "device": args.device, "threads": torch.get_num_threads(),
                   "backbone": None if args.checkpoint else args.backbone,  # checkpoints carry their own
                   "rows": [r.to_dict() for r in rows]}
        Path(args.json).write_text(json.dumps(payload, indent=2))
    return 0
