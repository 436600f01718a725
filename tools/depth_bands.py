"""Depth by distance band (true or predicted), side by side for several models, on the real lidar frames.

    .venv/bin/python tools/depth_bands.py LABEL=DIR [LABEL=DIR ...] [--sets kitti rellis] [--by true|pred] [--png OUT.png]

Each DIR holds `meco eval` JSONs named SET.json (tools/real_dev_eval.sh writes kitti.json and rellis.json)
with `depth_bands` (meco_core.metrics: per band of ground-truth distance, its pixels' share, metric
AbsRel and median gt/pred). Why: one AbsRel per set hides where a model's depth goes wrong; on real
cameras far things read near (session 28), and a change aimed at far depth must be judged per band.
Prints one table per set (gt/pred, 1.00 = unbiased, and AbsRel per band) and draws gt/pred per band.
`--by pred` bins by the model's own reading (`depth_bands_by_pred`): an uncertain but unbiased model
reads 1.00 there while its true-distance bands show regression to the mean.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


# binning: (its `meco eval` JSON key, what the pixels are binned by)
BINNINGS = {"true": ("depth_bands", "true distance"), "pred": ("depth_bands_by_pred", "predicted distance")}


def load_bands(run: Path, dataset: str, by: str = "true") -> list[dict]:
    """The bands list of RUN/DATASET.json; a clear error when the JSON predates them."""
    path, key = run / f"{dataset}.json", BINNINGS[by][0]
    if not path.is_file():
        raise SystemExit(f"depth_bands: no {path} (score the model with tools/real_dev_eval.sh)")
    bands = json.loads(path.read_text()).get(key)
    if not bands:
        raise SystemExit(f"depth_bands: {path} has no {key} (written before `meco eval` reported them: rescore)")
    return bands


def band_name(band: dict) -> str:
    return f"{band['from_m']:g}-{band['to_m']:g} m"


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def table(runs: dict[str, Path], dataset: str, by: str = "true") -> dict[str, list[dict]]:
    """{label: bands} for one set, every run with the same band edges (else the comparison is meaningless)."""
    out = {label: load_bands(d, dataset, by) for label, d in runs.items()}
    edges = {tuple((b["from_m"], b["to_m"]) for b in bands) for bands in out.values()}
    if len(edges) != 1:
        raise SystemExit(f"depth_bands: the runs' {dataset} bands differ ({sorted(edges)}): models of another max_depth?")
    return out


def share(band: dict, by: str) -> str:
    """Binned by prediction each model has its own shares: shown in its cells."""
    return "" if by == "true" else f" ({fmt(100 * band['share'], '.0f')} %)"


def print_table(dataset: str, rows: dict[str, list[dict]], by: str = "true") -> None:
    first = next(iter(rows.values()))
    print(f"\n{dataset}: median gt/pred (1.00 = unbiased; > 1 reads near) and metric AbsRel, by {BINNINGS[by][1]}"
          + ("" if by == "true" else ", each model's own share of pixels"))
    print(f"{'model':<16}" + "".join(f"{band_name(b) + ' (' + fmt(100 * b['share'], '.1f') + ' %)':>26}" for b in first))
    for label, bands in rows.items():
        cells = "".join(f"{fmt(b['gt_over_pred_median'], '.2f') + ' / ' + fmt(b['abs_rel'], '.3f') + share(b, by):>26}"
                        for b in bands)
        print(f"{label:<16}{cells}")


def plot(all_rows: dict[str, dict[str, list[dict]]], path: Path, by: str = "true") -> Path:
    from meco_core.evaluation.plotting import pyplot, save_figure

    plt = pyplot()
    fig, axes = plt.subplots(1, len(all_rows), figsize=(5 * len(all_rows), 3.6), squeeze=False)
    for ax, (dataset, rows) in zip(axes[0], all_rows.items()):
        names = [band_name(b) for b in next(iter(rows.values()))]
        for label, bands in rows.items():
            ys = [b["gt_over_pred_median"] if b["gt_over_pred_median"] is not None else float("nan") for b in bands]
            ax.plot(range(len(bands)), ys, marker="o", label=label)
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda y, _: f"{y:.2g}"))
        ax.yaxis.set_minor_formatter(plt.FuncFormatter(lambda y, _: f"{y:.2g}"))
        ax.set_xticks(range(len(names)), names)
        ax.set_title(f"{dataset}: median gt / pred by {BINNINGS[by][1]}")
        ax.set_ylabel("gt / pred (> 1: reads near)")
        ax.legend(fontsize=7)
    return save_figure(fig, path)


def parse_run(text: str) -> tuple[str, Path]:
    label, sep, folder = text.partition("=")
    if not sep or not label or not folder:
        raise argparse.ArgumentTypeError(f"expected LABEL=DIR, got {text!r}")
    return label, Path(folder)


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=parse_run, metavar="LABEL=DIR")
    p.add_argument("--sets", nargs="+", default=["kitti", "rellis"], help="JSON names in each DIR")
    p.add_argument("--by", choices=tuple(BINNINGS), default="true", help="bin by true or by predicted distance")
    p.add_argument("--png", type=Path, help="draw gt/pred per band here")
    p.add_argument("--json", type=Path, help="write {set: {label: bands}} here")
    args = p.parse_args(argv)
    runs = dict(args.runs)
    all_rows = {dataset: table(runs, dataset, args.by) for dataset in args.sets}
    for dataset, rows in all_rows.items():
        print_table(dataset, rows, args.by)
    if args.png:
        print(f"\nplot: {plot(all_rows, args.png, args.by)}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(all_rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
