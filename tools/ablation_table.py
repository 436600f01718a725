"""Table and plot of the MECO ablations (tools/ablate_meco.sh) against the comparison's MECO.

Reads only the committed per-run scores (`<run>/scores.json`), so it works on a fresh clone:
    .venv/bin/python tools/ablation_table.py [--baseline runs/compare_pretrained] [--out runs/ablations]
Each knob is compared seed by seed with the baseline run of the same seed (same data order
and initialisation), and over its seeds as mean +- half range, like `meco compare`.
Writes <out>/ablations.{md,json,png}.
"""
from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from meco_core.experiments.compare import aggregate_seeds
from meco_core.evaluation.plotting import pyplot, save_figure

SEG, DEPTH = "camvid/val", "synth_golf/test depth"


SCRIPT = Path(__file__).with_name("ablate_meco.sh")


def knob_settings(script: Path = SCRIPT) -> dict[str, str]:
    """knob -> its `--set` override, read from the script that runs them (one source)."""
    return dict(re.findall(r'^\s*\[(\w+)\]="([^"]+)"', script.read_text(), flags=re.M))


def seed_scores(model_dir: Path) -> dict[int, dict]:
    """{seed: sets} of every finished run under <knob>/meco/seed<k>/."""
    found = {}
    for path in sorted(model_dir.glob("seed*/scores.json")):
        found[int(path.parent.name.removeprefix("seed"))] = json.loads(path.read_text())["sets"]
    return found


def row(name: str, setting: str, per_seed: dict[int, dict], base: dict[int, dict]) -> dict:
    agg = aggregate_seeds(per_seed)
    paired = {s: per_seed[s][SEG]["miou"] - base[s][SEG]["miou"] for s in per_seed if s in base}
    return {"knob": name, "setting": setting, "seeds": sorted(per_seed),
            "miou": agg["metrics"][SEG]["miou"], "miou_spread": agg["spread"][SEG]["miou"],
            "miou_per_seed": {s: per_seed[s][SEG]["miou"] for s in per_seed},
            "miou_minus_baseline_same_seed": paired,
            "abs_rel": agg["metrics"][DEPTH]["abs_rel"], "abs_rel_spread": agg["spread"][DEPTH]["abs_rel"]}


def markdown(rows: list[dict]) -> str:
    def pm(v, s, f):
        return f"{v:{f}}" + (f" ± {s:{f}}" if s is not None else "")
    lines = ["| knob | setting | seeds | CamVid val mIoU % | per seed | - MECO same seed | synth AbsRel |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        per = " / ".join(f"{r['miou_per_seed'][s]:.1f}" for s in r["seeds"])
        delta = " / ".join(f"{d:+.1f}" for d in r["miou_minus_baseline_same_seed"].values()) or "-"
        lines.append(f"| {r['knob']} | {r['setting']} | {','.join(map(str, r['seeds']))} | "
                     f"{pm(r['miou'], r['miou_spread'], '.1f')} | {per} | {delta} | "
                     f"{pm(r['abs_rel'], r['abs_rel_spread'], '.3f')} |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> Path:
    """mIoU per run (dots) and per knob (bar = mean), the baseline's seeds as a band."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 4))
    base = rows[0]
    ax.axhspan(min(base["miou_per_seed"].values()), max(base["miou_per_seed"].values()), color="grey", alpha=0.2,
               label="MECO (baseline) seed range")
    for i, r in enumerate(rows):
        ax.bar(i, r["miou"], color="tab:blue" if i else "grey", alpha=0.5)
        ax.scatter([i] * len(r["seeds"]), list(r["miou_per_seed"].values()), color="black", s=15, zorder=3)
    ax.set_xticks(range(len(rows)), [r["knob"] for r in rows], rotation=20, fontsize=8)
    ax.set_ylim(min(min(r["miou_per_seed"].values()) for r in rows) - 3,
                max(max(r["miou_per_seed"].values()) for r in rows) + 2)
    ax.set_ylabel("CamVid val mIoU % (330 steps)")
    ax.set_title("MECO ablations, one knob at a time (dots: seeds)", fontsize=10)
    ax.legend(fontsize=8)
    return save_figure(fig, path, dpi=120)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", default="runs/compare_pretrained")
    p.add_argument("--out", default="runs/ablations")
    args = p.parse_args()
    out = Path(args.out)
    base = seed_scores(Path(args.baseline) / "meco")
    rows = [row("MECO (baseline)", "config/train/meco_camvid.yaml, Lite0 pinned", base, base)]
    settings = knob_settings()
    for knob_dir in sorted(d for d in out.iterdir() if (d / "meco").is_dir()):
        per_seed = seed_scores(knob_dir / "meco")
        if per_seed:
            rows.append(row(knob_dir.name, settings.get(knob_dir.name, "?"), per_seed, base))
    (out / "ablations.json").write_text(json.dumps(rows, indent=2))
    (out / "ablations.md").write_text(markdown(rows) + "\n")
    plot(rows, out / "ablations.png")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
