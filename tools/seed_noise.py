"""Is a recipe's difference larger than its seed noise? Two recipes, two seeds each, on the real dev frames.

    .venv/bin/python tools/seed_noise.py [--rule v20] A_SEED1 A_SEED2 B_SEED1 B_SEED2 \
        [--views A_V1 A_V2 B_V1 B_V2] [--json OUT.json]

Each positional directory holds `tools/real_dev_eval.sh` JSONs; `--views` names the matching
`tools/camera_views_eval.sh` directories (adds the pitch sensitivity and the six pitched views' AbsRel).
Why: a rule judges one run of each recipe, and a single run's difference may be the seed's. For each
figure the seed difference of a recipe is |seed 2 - seed 1|; the recipe difference B - A counts as
real only where it has the same sign at both seeds and exceeds both recipes' seed differences
(session 28, stated before its runs finished: docs/golf_model_history.md "Seed noise").

`--rule v20` (config/train/meco_golf_v23.yaml, fixed before its runs) judges recipe B against the shipped
recipe A over the two seeds: no figure really worse, RELLIS fairway or the depth score really better, B's
two-seed mean depth score at most A's + 0.007, and B's seed-1 run within the single-run guards seed noise
does not swamp (synthetic AbsRel <= 0.100 and mIoU >= 85, CamVid streets >= A seed 1's - 1.0, KITTI
hazard % <= A seed 1's + 2.0). B's seed-1 run ships if all hold.
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

LOWER_IS_BETTER = {"depth", "kitti_abs_rel", "kitti_ms_abs_rel", "rellis_abs_rel", "rellis_ms_abs_rel", "synth_abs_rel",
                   "pitch_sensitivity", "pitch_abs_rel"}
RULE_V20_GAINS = ("rellis_fairway", "depth")  # one of these must be really better
RULE_V20_MEAN_DEPTH_SLACK = 0.007  # half the shipped recipe's seed difference in depth score (0.014, session 28)


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


def compare(per_run: list[dict[str, float]]) -> dict[str, dict]:
    """{figure: {a1, a2, b1, b2, diff_seed1, diff_seed2, seed_noise, real}} for the figures every run has
    (per_run: the four runs' `figures`, A seed 1, A seed 2, B seed 1, B seed 2)."""
    table = {}
    for key, _, _ in FIGURES:
        values = [f.get(key) for f in per_run]
        if any(v is None for v in values):
            continue
        table[key] = {"a1": values[0], "a2": values[1], "b1": values[2], "b2": values[3], **verdict(*values)}
    return table


def better(key: str, diff: float) -> bool:
    """Whether B - A = diff is an improvement for this figure."""
    return diff < 0 if key in LOWER_IS_BETTER else diff > 0


def rule_v20(table: dict[str, dict], a1: dict[str, float], b1: dict[str, float]) -> tuple[bool, list[str]]:
    """Rule v20 over the study's table and the two seed-1 runs' scores: (ships, one line per condition)."""
    worse = [k for k, r in table.items() if r["real"] and not better(k, r["diff_seed1"])]
    gains = [k for k in RULE_V20_GAINS if k in table and table[k]["real"] and better(k, table[k]["diff_seed1"])]
    d = table["depth"]
    mean_a, mean_b = (d["a1"] + d["a2"]) / 2, (d["b1"] + d["b2"]) / 2
    if "kitti_hazard" not in a1 or "kitti_hazard" not in b1:
        raise SystemExit("rule v20 needs kitti_class_shares.json in both seed-1 directories (tools/real_dev_eval.sh)")
    guards = {"synthetic AbsRel <= 0.100": b1["synth_abs_rel"] <= 0.100,
              "synthetic mIoU >= 85": b1["synth_miou"] >= 85.0,
              f"CamVid streets >= {a1['camvid_streets'] - 1.0:.2f}": b1["camvid_streets"] >= a1["camvid_streets"] - 1.0,
              f"KITTI hazard % <= {a1['kitti_hazard'] + 2.0:.2f}": b1["kitti_hazard"] <= a1["kitti_hazard"] + 2.0}
    checks = [
        (not worse, f"1. no figure really worse: {', '.join(worse) or 'none is'}"),
        (bool(gains), f"2. RELLIS fairway or depth score really better: {', '.join(gains) or 'neither is'}"),
        (mean_b <= mean_a + RULE_V20_MEAN_DEPTH_SLACK,
         f"3. two-seed mean depth score {mean_a:.4f} -> {mean_b:.4f} (at most +{RULE_V20_MEAN_DEPTH_SLACK})"),
        (all(guards.values()), "4. B seed 1's single-run guards: "
         + ", ".join(f"{name} {'holds' if ok else 'FAILS'}" for name, ok in guards.items())
         + f" (synthetic {b1['synth_abs_rel']:.4f} / {b1['synth_miou']:.2f}, streets {b1['camvid_streets']:.2f}, "
           f"hazard {b1['kitti_hazard']:.2f})"),
    ]
    return all(ok for ok, _ in checks), [f"{'holds' if ok else 'fails'}  {line}" for ok, line in checks]


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
    p.add_argument("--rule", choices=("v20",), help="also judge B against A by this seed-aware ship rule")
    args = p.parse_args(argv)
    missing = [str(d) for d in [*args.runs, *(args.views or [])] if not d.is_dir()]
    if missing:
        raise SystemExit(f"seed_noise: not a directory: {', '.join(missing)}")
    per_run = [figures(r, None if args.views is None else v) for r, v in zip(args.runs, args.views or [None] * 4)]
    table = compare(per_run)
    print_table(table, args.runs)
    if args.rule == "v20":
        ships, lines = rule_v20(table, per_run[0], per_run[2])
        print("rule v20:\n  " + "\n  ".join(lines))
        print(f"ships: {args.runs[2]}" if ships else "ships: the current model (rule v20 does not hold)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": [str(d) for d in args.runs], "figures": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
