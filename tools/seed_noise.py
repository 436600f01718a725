"""Is a recipe's difference larger than its seed noise? Two recipes, the same seeds each, on the real dev frames.

    .venv/bin/python tools/seed_noise.py [--rule v20|v21] A_SEED1 .. A_SEEDk B_SEED1 .. B_SEEDk \
        [--views A_V1 .. A_Vk B_V1 .. B_Vk] [--json OUT.json]

Each positional directory holds `tools/real_dev_eval.sh` JSONs, recipe A's seeds first, then recipe B's in the
same seed order; `--views` names the matching `tools/camera_views_eval.sh` directories (adds the pitch
sensitivity and the six pitched views' AbsRel). Why: a rule judges one run of each recipe, and a single run's
difference may be the seed's. For each figure a recipe's seed noise is the spread of its seeds (max - min); the
recipe difference B - A counts as real (the "real" column, session 28: docs/golf_model_history.md "Seed noise")
only where it has the same sign at every seed and exceeds both recipes' spreads. The table also gives the
paired t of the differences, mean / (sd / sqrt(k)): a spread widens with every seed added, so the spread test
stiffens as seeds come in, while t weighs k seeds as k.

`--rule v20` (config/train/meco_golf_v23.yaml, fixed before its runs; two seeds) judges recipe B against the
shipped recipe A: no figure really worse, RELLIS fairway or the depth score really better, B's two-seed mean depth
score at most A's + 0.007, and B's seed-1 run within the single-run guards seed noise does not swamp (synthetic
AbsRel <= 0.100 and mIoU >= 85, CamVid streets >= A seed 1's - 1.0, KITTI hazard % <= A seed 1's + 2.0).

`--rule v21` (config/train/meco_golf_v22.yaml, fixed in session 30 before the third seeds were scored; three
seeds, 11 / 12 / 13) asks whether the fairway gain of v22's recipe (real by rule v20's test at seeds 11 and 12)
replicates at a fresh seed: (1) at the third seed B's RELLIS fairway is above A's; (2) over the three seeds the
fairway gain has paired t > T_CRIT_3_SEEDS; (3) no real-frame figure is really worse: none has t beyond
T_CRIT_3_SEEDS in B's worse direction with a mean difference larger than A's seed standard deviation; (4) B's
three-seed mean depth score at most A's + 0.007; (5) B's seed-1 run within rule v20's single-run guards.

Either rule ships B's seed-1 run (the config's own seed) if all its conditions hold.
"""
from __future__ import annotations

import argparse
import json
import math
import statistics
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
# Rule v21: the real-frame figures that must not be really worse (the synthetic ones have the bars instead).
RULE_V21_REAL_FRAME_FIGURES = ("depth", "kitti_abs_rel", "kitti_ms_abs_rel", "rellis_abs_rel", "rellis_ms_abs_rel",
                               "rellis_miou_gt", "camvid_streets", "pitch_sensitivity", "pitch_abs_rel")
T_CRIT_3_SEEDS = 2.920  # Student's t, one-sided 5 %, 2 degrees of freedom (three paired differences)


def figures(run: Path, views: Path | None) -> dict[str, float]:
    """The study's figures for one run (its real_dev_eval directory and, if given, its views directory)."""
    out = scores(run)
    if views is not None:
        out["pitch_sensitivity"], out["pitch_abs_rel"] = pitch_scores(views)
    return out


def paired_t(diffs: list[float]) -> float:
    """mean / (sd / sqrt(k)) of the per-seed differences; +-inf when they agree exactly, 0 when all are 0."""
    mean = statistics.fmean(diffs)
    sd = statistics.stdev(diffs)
    if sd == 0:
        return 0.0 if mean == 0 else math.copysign(math.inf, mean)
    return mean / (sd / math.sqrt(len(diffs)))


def verdict(a: list[float], b: list[float]) -> dict[str, float | bool]:
    """Per-seed differences B - A, the larger seed spread, whether the difference is real, and its paired t."""
    diffs = [y - x for x, y in zip(a, b)]
    noise = max(max(a) - min(a), max(b) - min(b))
    real = all(d != 0 for d in diffs) and len({d > 0 for d in diffs}) == 1 and min(map(abs, diffs)) > noise
    return {**{f"diff_seed{i}": d for i, d in enumerate(diffs, 1)}, "seed_noise": noise, "real": real,
            "mean_diff": statistics.fmean(diffs), "t": paired_t(diffs), "a_sd": statistics.stdev(a)}


def compare(per_run: list[dict[str, float]]) -> dict[str, dict]:
    """{figure: {a1.., b1.., diff_seed1.., seed_noise, real, mean_diff, t, a_sd}} for the figures every run has
    (per_run: the runs' `figures`, A's seeds then B's in the same order)."""
    k = len(per_run) // 2
    table = {}
    for key, _, _ in FIGURES:
        values = [f.get(key) for f in per_run]
        if any(v is None for v in values):
            continue
        a, b = values[:k], values[k:]
        table[key] = {**{f"a{i}": v for i, v in enumerate(a, 1)}, **{f"b{i}": v for i, v in enumerate(b, 1)},
                      **verdict(a, b)}
    return table


def better(key: str, diff: float) -> bool:
    """Whether B - A = diff is an improvement for this figure."""
    return diff < 0 if key in LOWER_IS_BETTER else diff > 0


def single_run_guards(a1: dict[str, float], b1: dict[str, float], rule: str) -> tuple[bool, str]:
    """Rule v20's condition 4 (v21's 5): B's seed-1 run against the bars seed noise does not swamp."""
    if "kitti_hazard" not in a1 or "kitti_hazard" not in b1:
        raise SystemExit(f"rule {rule} needs kitti_class_shares.json in both seed-1 directories (tools/real_dev_eval.sh)")
    guards = {"synthetic AbsRel <= 0.100": b1["synth_abs_rel"] <= 0.100,
              "synthetic mIoU >= 85": b1["synth_miou"] >= 85.0,
              f"CamVid streets >= {a1['camvid_streets'] - 1.0:.2f}": b1["camvid_streets"] >= a1["camvid_streets"] - 1.0,
              f"KITTI hazard % <= {a1['kitti_hazard'] + 2.0:.2f}": b1["kitti_hazard"] <= a1["kitti_hazard"] + 2.0}
    line = ("B seed 1's single-run guards: " + ", ".join(f"{name} {'holds' if ok else 'FAILS'}" for name, ok in guards.items())
            + f" (synthetic {b1['synth_abs_rel']:.4f} / {b1['synth_miou']:.2f}, streets {b1['camvid_streets']:.2f}, "
              f"hazard {b1['kitti_hazard']:.2f})")
    return all(guards.values()), line


def mean_depth_check(table: dict[str, dict], k: int) -> tuple[bool, str]:
    """B's k-seed mean depth score at most A's + RULE_V20_MEAN_DEPTH_SLACK."""
    d = table["depth"]
    mean_a = statistics.fmean(d[f"a{i}"] for i in range(1, k + 1))
    mean_b = statistics.fmean(d[f"b{i}"] for i in range(1, k + 1))
    return (mean_b <= mean_a + RULE_V20_MEAN_DEPTH_SLACK,
            f"{k}-seed mean depth score {mean_a:.4f} -> {mean_b:.4f} (at most +{RULE_V20_MEAN_DEPTH_SLACK})")


def rule_v20(table: dict[str, dict], a1: dict[str, float], b1: dict[str, float]) -> tuple[bool, list[str]]:
    """Rule v20 over the study's table (two seeds) and the two seed-1 runs' scores: (ships, one line per condition)."""
    worse = [k for k, r in table.items() if r["real"] and not better(k, r["diff_seed1"])]
    gains = [k for k in RULE_V20_GAINS if k in table and table[k]["real"] and better(k, table[k]["diff_seed1"])]
    depth_ok, depth_line = mean_depth_check(table, 2)
    guards_ok, guards_line = single_run_guards(a1, b1, "v20")
    checks = [
        (not worse, f"1. no figure really worse: {', '.join(worse) or 'none is'}"),
        (bool(gains), f"2. RELLIS fairway or depth score really better: {', '.join(gains) or 'neither is'}"),
        (depth_ok, f"3. {depth_line}"),
        (guards_ok, f"4. {guards_line}"),
    ]
    return all(ok for ok, _ in checks), [f"{'holds' if ok else 'fails'}  {line}" for ok, line in checks]


def really_worse_by_t(key: str, r: dict) -> bool:
    """Rule v21's "really worse": t beyond the critical value in B's worse direction, by more than A's seed sd."""
    worse_t = r["t"] if not better(key, 1.0) else -r["t"]  # t measured in the direction that hurts
    return worse_t > T_CRIT_3_SEEDS and abs(r["mean_diff"]) > r["a_sd"]


def rule_v21(table: dict[str, dict], a1: dict[str, float], b1: dict[str, float]) -> tuple[bool, list[str]]:
    """Rule v21 over the study's table (three seeds) and the two seed-1 runs' scores: (ships, one line per condition)."""
    f = table["rellis_fairway"]
    worse = [k for k in RULE_V21_REAL_FRAME_FIGURES if k in table and really_worse_by_t(k, table[k])]
    depth_ok, depth_line = mean_depth_check(table, 3)
    guards_ok, guards_line = single_run_guards(a1, b1, "v21")
    checks = [
        (f["diff_seed3"] > 0, f"1. RELLIS fairway at the third seed {f['a3']:.1f} -> {f['b3']:.1f} (B above A asked)"),
        (f["t"] > T_CRIT_3_SEEDS, f"2. RELLIS fairway gain over three seeds: mean {f['mean_diff']:+.1f}, paired t "
                                  f"{f['t']:.2f} (above {T_CRIT_3_SEEDS} asked)"),
        (not worse, f"3. no real-frame figure really worse: {', '.join(worse) or 'none is'}"),
        (depth_ok, f"4. {depth_line}"),
        (guards_ok, f"5. {guards_line}"),
    ]
    return all(ok for ok, _ in checks), [f"{'holds' if ok else 'fails'}  {line}" for ok, line in checks]


RULES = {"v20": (2, rule_v20), "v21": (3, rule_v21)}  # rule: (seeds per recipe it judges, judge)


def print_table(table: dict[str, dict], runs: list[Path]) -> None:
    k = len(runs) // 2
    print(f"A: {', '.join(map(str, runs[:k]))}\nB: {', '.join(map(str, runs[k:]))}")
    seeds = range(1, k + 1)
    print(f"{'figure':<28} " + " ".join(f"{f'A seed{i}':>10}" for i in seeds) + " "
          + " ".join(f"{f'B seed{i}':>10}" for i in seeds) + " " + " ".join(f"{f'B-A seed{i}':>10}" for i in seeds)
          + f" {'seed noise':>10} {'paired t':>8}  recipe difference")
    for key, label, dec in FIGURES:
        if key not in table:
            continue
        r = table[key]
        cells = " ".join(f"{r[f'{ab}{i}']:>10.{dec}f}" for ab in "ab" for i in seeds)
        diffs = " ".join(f"{r[f'diff_seed{i}']:>+10.{dec}f}" for i in seeds)
        print(f"{label:<28} {cells} {diffs} {r['seed_noise']:>10.{dec}f} {r['t']:>8.2f}  "
              f"{'real' if r['real'] else 'within noise'}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path, metavar="RUN", help="A's seeds, then B's in the same seed order")
    p.add_argument("--views", nargs="+", type=Path, metavar="VIEWS", help="their camera_views_eval directories")
    p.add_argument("--json", type=Path, help="write the table here")
    p.add_argument("--rule", choices=tuple(RULES), help="also judge B against A by this seed-aware ship rule")
    args = p.parse_args(argv)
    if len(args.runs) < 4 or len(args.runs) % 2:
        raise SystemExit(f"seed_noise: give each recipe the same seeds, at least two: {len(args.runs)} runs given")
    if args.views is not None and len(args.views) != len(args.runs):
        raise SystemExit(f"seed_noise: --views needs one directory per run ({len(args.runs)}), {len(args.views)} given")
    k = len(args.runs) // 2
    if args.rule and RULES[args.rule][0] != k:
        raise SystemExit(f"seed_noise: rule {args.rule} judges {RULES[args.rule][0]} seeds per recipe, {k} given")
    missing = [str(d) for d in [*args.runs, *(args.views or [])] if not d.is_dir()]
    if missing:
        raise SystemExit(f"seed_noise: not a directory: {', '.join(missing)}")
    views = args.views or [None] * len(args.runs)
    per_run = [figures(r, v) for r, v in zip(args.runs, views)]
    table = compare(per_run)
    print_table(table, args.runs)
    if args.rule:
        ships, lines = RULES[args.rule][1](table, per_run[0], per_run[k])
        print(f"rule {args.rule}:\n  " + "\n  ".join(lines))
        print(f"ships: {args.runs[k]}" if ships else f"ships: the current model (rule {args.rule} does not hold)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"runs": [str(d) for d in args.runs], "figures": table}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
