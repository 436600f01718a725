"""Is a recipe's difference larger than its seed noise? Two recipes, two seeds each, on the real dev frames.

    .venv/bin/python tools/seed_noise.py A_SEED1 A_SEED2 B_SEED1 B_SEED2 \
        [--views A_V1 A_V2 B_V1 B_V2] [--json OUT.json]

Each positional directory holds `tools/real_dev_eval.sh` JSONs; `--views` names the matching
`tools/camera_views_eval.sh` directories (adds the pitch sensitivity and the six pitched views' AbsRel).
Why: a rule judges one run of each recipe, and a single run's difference may be the seed's. For each
figure the seed difference of a recipe is |seed 2 - seed 1|; the recipe difference B - A counts as
real only where it has the same sign at both seeds and exceeds both recipes' seed differences
(session 28, stated before its runs finished: docs/golf_model_history.md "Seed noise").
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tools/ is not a package: its rule module beside it
from golf_ship_rule import pitch_scores, scores  # noqa: E402

# (key, label, decimals): the figures the seed study names, in its order.
FIGURES = (
    ("depth", "depth score", 4),
    ("kitti_abs_rel", "KITTI AbsRel", 3),
    ("kitti_ms_abs_rel", "KITTI median-scaled AbsRel", 3),
    ("rellis_abs_rel", "RELLIS AbsRel", 3),
    ("rellis_ms_abs_rel", "RELLIS median-scaled AbsRel", 3),
    ("rellis_miou_gt", "RELLIS miou_gt", 1),
    ("rellis_fairway", "RELLIS fairway IoU", 1),
    ("synth_abs_rel", "synthetic AbsRel", 4),
    ("synth_miou", "synthetic mIoU", 2),
    ("camvid_streets", "CamVid streets", 2),
    ("pitch_sensitivity", "pitch sensitivity", 4),
    ("pitch_abs_rel", "six pitched views' AbsRel", 4),
)


def figures(run: Path, views: Path | None) -> dict[str, float]:
    """The study's figures for one run (its real_dev_eval directory and, if given, its views directory)."""
    out = scores(run)
    if views is not None:
        out["pitch_sensitivity"], out["pitch_abs_rel"] = pitch_scores(views)
    return out


def verdict(a1: float, a2: float, b1: float, b2: float) -> dict[str, float | bool]:
    """The recipe difference at each seed, the larger seed difference, and whether the difference is real."""
    d1, d2 = b1 - a1, b2 - a2
    noise = max(abs(a2 - a1), abs(b2 - b1))
    real = (d1 > 0) == (d2 > 0) and d1 != 0 and d2 != 0 and min(abs(d1), abs(d2)) > noise
    return {"diff_seed1": d1, "diff_seed2": d2, "seed_noise": noise, "real": real}


def compare(runs: list[Path], views: list[Path] | None) -> dict[str, dict]:
    """{figure: {a1, a2, b1, b2, diff_seed1, diff_seed2, seed_noise, real}} for the figures every run has."""
    per_run = [figures(r, None if views is None else v) for r, v in zip(runs, views or [None] * 4)]
    table = {}
    for key, _, _ in FIGURES:
        values = [f.get(key) for f in per_run]
        if any(v is None for v in values):
            continue
        table[key] = {"a1": values[0], "a2": values[1], "b1": values[2], "b2": values[3], **verdict(*values)}
    return table


def print_table(table: dict[str, dict], runs: list[Path]) -> None:
    print(f"A: {runs[0]} (seed 1), {runs[1]} (seed 2)\nB: {runs[2]} (seed 1), {runs[3]} (seed 2)")
    print(f"{'figure':<28} {'A seed1':>10} {'A seed2':>10} {'B seed1':>10} {'B seed2':>10} "
          f"{'B-A seed1':>10} {'B-A seed2':>10} {'seed noise':>10}  recipe difference")
    for key, label, dec in FIGURES:
        if key not in table:
            continue
        r = table[key]
        cells = " ".join(f"{r[k]:>10.{dec}f}" for k in ("a1", "a2", "b1", "b2"))
        diffs = " ".join(f"{r[k]:>+10.{dec}f}" for k in ("diff_seed1", "diff_seed2"))
        print(f"{label:<28} {cells} {diffs} {r['seed_noise']:>10.{dec}f}  {'real' if r['real'] else 'within noise'}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs=4, type=Path, metavar="RUN", help="A seed 1, A seed 2, B seed 1, B seed 2")
    p.add_argument("--views", nargs=4, type=Path, metavar="VIEWS", help="their camera_views_eval directories")
    p.add_argument("--json", type=Path, help="write the table here")
    args = p.parse_args(argv)
    missing = [str(d) for d in [*args.runs, *(args.views or [])] if not d.is_dir()]
    if missing:
        raise SystemExit(f"seed_noise: not a directory: {', '.join(missing)}")
    table = compare(args.runs, args.views)
    print_table(table, args.runs)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": [str(d) for d in args.runs], "figures": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
