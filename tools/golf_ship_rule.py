"""The shipping rules of the golf configs, applied to tools/real_dev_eval.sh outputs.

    .venv/bin/python tools/golf_ship_rule.py out/real_dev/shipped_v2 out/real_dev/meco_golf_v3 out/real_dev/meco_golf_v4
    .venv/bin/python tools/golf_ship_rule.py --rule v5 out/real_dev/v3_new_mapping out/real_dev/meco_golf_v5 ...
    .venv/bin/python tools/golf_ship_rule.py --rule v6 out/real_dev/v5b out/real_dev/meco_golf_v6a ...
    .venv/bin/python tools/golf_ship_rule.py --rule v7 out/real_dev/v5b out/real_dev/meco_golf_v7a ...
    .venv/bin/python tools/golf_ship_rule.py --rule v9 out/real_dev/v8 out/real_dev/meco_golf_v9a ...
    .venv/bin/python tools/golf_ship_rule.py --rule v10 out/real_dev/v8 out/real_dev/meco_golf_v10 ...
    .venv/bin/python tools/golf_ship_rule.py --rule v12 out/real_dev/v15 out/shift/v15 out/shift/v15a out/shift/v16a \
        out/real_dev/meco_golf_v16 out/shift/v16
    .venv/bin/python tools/golf_ship_rule.py --rule v13 out/real_dev/meco_golf_v17h3 out/real_dev/meco_golf_v17h6
    .venv/bin/python tools/golf_ship_rule.py --rule v18 SHIPPED SHIPPED_SHIFTS BASELINE_ON_HALF MEASUREMENT_ON_HALF \
        CANDIDATE CANDIDATE_SHIFTS SHIPPED_VIEWS CANDIDATE_VIEWS

The first directory is the shipped model; each other one is a candidate.

Rule v3 (config/train/meco_golf_v3.yaml / _v4.yaml, the default): a candidate passes
if it gains >= 2 mIoU points on the held-out YCOR block OR lowers the real dev depth score
(mean of metric and median-scaled AbsRel over KITTI and RELLIS) by >= 0.02, loses neither by
more than 1 point / 0.01, and scores synthetic-test AbsRel <= 0.118. Of several passing, the
lowest depth score ships unless its YCOR mIoU is more than 1 point below another passing one's.

Rule v5 (config/train/meco_golf_v5.yaml / _v5b.yaml): a candidate is eligible if its synthetic-
test AbsRel is <= 0.110 and mIoU >= 85, its depth score is at most the shipped one's + 0.01 and
its CamVid val mIoU over background, road and obstacle at least the shipped one's - 2. The
eligible one with the highest YCOR mIoU ships if that beats the shipped one's by >= 2 points;
of two within 1 point of each other, the lower depth score ships.

Rule v6 (config/train/meco_golf_v6a.yaml / _v6b.yaml): a candidate is eligible if its synthetic-
test AbsRel is <= 0.100 and mIoU >= 85, its depth score is at most the shipped one's + 0.01, its
CamVid streets mIoU at least the shipped one's - 1 and its YCOR mIoU at least the shipped one's
- 1.5. The eligible one with the lowest mean share of KITTI's street frames called hazard
(kitti_class_shares.json) ships if that is >= 4 points below the shipped one's; of two within
1 point of each other, the higher YCOR mIoU ships.

Rule v7 (config/train/meco_golf_v7a.yaml / _v7b.yaml): eligible by rule v6's guards. An eligible
candidate qualifies if its KITTI hazard share is >= 4 points below the shipped one's, OR its
depth score is >= 0.02 below the shipped one's with its hazard share at most 1 point above.
The qualifying one with the lowest hazard share ships; within 1 point of it, the lowest depth
score.

Rule v9 (config/train/meco_golf_v9a.yaml / _v9b.yaml): eligible by rule v6's guards with the KITTI
hazard share at most 2 points above the shipped one's. The eligible one with the highest YCOR
mIoU ships if that beats the shipped one's by >= 2 points; of those within 1 point of it, the
lower depth score (rule v5's choice).

Rule v10 (config/train/meco_golf_v10.yaml): eligible by rule v9's guards, with the YCOR guard on
the block's miou_gt (>= the shipped one's - 1.5) and RELLIS fairway IoU >= the shipped one's - 10.
Real-ground score: the mean of the YCOR block's and the RELLIS frame's miou_gt. The eligible one
with the highest real-ground score ships if that beats the shipped one's by >= 2 points; of those
within 1 point of it, the lower depth score.

Rule v11 (config/train/meco_golf_v15.yaml): a final fit on every YCOR frame, the held-out block
included, which then cannot judge it. Arguments: the shipped model, the shipped model scored with
YCOR=data/ycor_every2, the measurement run (trained on every other frame of the block) scored the
same way, then the candidates. The measurement must read the 24 block frames it never saw >= 2
points higher over their classes (miou_gt) than the shipped model, with fairway IoU no lower. A
candidate is eligible by rule v10's guards without the block's (it trained on it), with the RELLIS
frame's miou_gt >= the shipped one's - 2; if the measurement holds, the eligible candidate with the
lower depth score ships.

Rule v12 (config/train/meco_golf_v16.yaml): other cameras' looks. Arguments: the shipped model's
real_dev_eval directory and its tools/camera_shift_eval.sh directory, the measurement's baseline and
the measurement run (camera_shift_eval directories, scored on the YCOR block frames neither trained
on), then the candidate's real_dev_eval and camera_shift_eval directories. Conditions: the clean
frames and the 9 shifts of tools/camera_shift.py. The measurement must raise the mean over the
conditions of the block's miou_gt by >= 2 points, keep the mean fairway IoU no lower, and lose at
most 1 point of clean miou_gt. The candidate is eligible by rule v11's guards on the clean frames,
with its mean real depth score over the conditions at most the shipped one's + 0.01 and the RELLIS
frame's mean miou_gt over them at least the shipped one's - 2. It ships if both hold.

Rule v14 (config/train/meco_golf_v18.yaml): rule v12's test and arguments, the measurement's
baseline being v15a's camera_shift scores recorded before the island step; the measurement must
raise the mean miou_gt over the conditions by >= 2.2 points (2, plus twice the island step's +0.1
on v15a's clean frames).

Rule v16 (session 26, config/train/meco_golf_v18.yaml's re-judgement): rule v15's stated consequence
(config/train/meco_golf_v19h.yaml). Its measurement, the balance against 17h3 on the 184 unseen
frames of the half split (miou_gt and fairway IoU each at most 1 point lower), stands in for rule
v14's block measurement, whose one loss was one shed; the candidate must be eligible by rule v12's
candidate guards (rule v11's on the clean frames, the conditions' depth and RELLIS), the synthetic
guard scored on the regression set tools/real_dev_eval.sh makes (seed 3, one 75-degree camera).
Arguments: SHIPPED SHIPPED_SHIFTS BASELINE_ON_HALF MEASUREMENT_ON_HALF CANDIDATE CANDIDATE_SHIFTS
(the two on the half split need only ycor_val.json).

Rule v17 (config/train/meco_golf_v20.yaml): another camera's sensor (blur, noise, JPEG) in
training. Arguments as rule v12's, the measurement's baseline and run being camera_shift_eval
directories of 19h and v20h on the half split (YCOR=data/ycor_half: 184 frames neither saw). The
measurement must raise the mean miou_gt over the blur, noise and JPEG conditions by >= 1 point,
keep the mean over all conditions no lower and lose at most 1 point of clean miou_gt and of
clean fairway IoU. The candidate is eligible by rule v12's candidate guards, with KITTI's metric
AbsRel under blur no higher than the shipped one's. It ships if both hold.

Rule v18 (config/train/meco_golf_v21.yaml): real off-road frames through a longer lens. Rule v16's
arguments and test (measurement: v21h against 19h on the 184 half-split frames neither saw, miou_gt
and fairway IoU each at most 1 lower; candidate: rule v12's candidate guards), then the shipped
model's and the candidate's tools/camera_views_eval.sh directories: the candidate's mean metric AbsRel
over the zoom views (level, x1.2, x1.4, x1.8, x2.2) of KITTI and RELLIS must be >= 0.03 lower.

Rule v19 (config/train/meco_golf_v22.yaml): real frames as other mounts would record them. Rule
v18's arguments and test with the pitch groups instead of the zoom group: the candidate's pitch
sensitivity (the mean over KITTI and RELLIS and the views pitched 2.5 and 5 degrees up and down of
|ln(median scale / its group's level view's)|) at most 0.7x the shipped one's, and its mean metric
AbsRel over those six views at most the shipped one's + 0.01.

Rule v13 (config/train/meco_golf_v17h3.yaml): a measurement pair, no candidate. Arguments: the
baseline and the changed recipe, both trained on half of YCOR and scored on the other half
(data/ycor_half). Rule v11's measurement gate: the change must read the unseen half >= 2 points
higher over its classes (miou_gt) with fairway IoU no lower; if it holds, the change carries to the
next final fit on every frame. Nothing ships by this rule.

Printed beside the rules' columns, not used by them: the YCOR mIoU over the classes the block's
ground truth holds (`meco eval`'s miou_gt; a JSON written before it existed shows '-') and the
fairway IoU. Rule v9's mIoU counts road with IoU 0 as soon as one pixel of the block is called
road: v8's 1,164 road pixels in one frame of 48 cost it 11.2 points (session 14).
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path


def scores(run: Path) -> dict[str, float]:
    m = {name: json.loads((run / f"{name}.json").read_text())
         for name in ("kitti", "rellis", "ycor_val", "synth_test", "camvid_val")}
    real_ground = (m["ycor_val"].get("miou_gt"), m["rellis"].get("miou_gt"))
    depth = depth_score(m)
    streets = sum(class_iou(m["camvid_val"], c) for c in STREET_CLASSES) / len(STREET_CLASSES)
    out = {"depth": depth, "ycor_miou": m["ycor_val"]["miou"], "ycor_miou_gt": m["ycor_val"].get("miou_gt"),
           "ycor_fairway": class_iou(m["ycor_val"], "fairway"), "synth_abs_rel": m["synth_test"]["abs_rel"],
           "synth_miou": m["synth_test"]["miou"], "camvid_streets": streets,
           "rellis_fairway": class_iou(m["rellis"], "fairway"), "rellis_miou_gt": m["rellis"].get("miou_gt"),
           "real_ground": None if None in real_ground else sum(real_ground) / 2,
           **{f"{n}_{k}": m[n][k] for n in ("kitti", "rellis") for k in ("abs_rel", "ms_abs_rel")}}
    shares = run / "kitti_class_shares.json"
    if shares.is_file():  # {checkpoint: {frame: {class: % of the frame}}}
        frames = list(next(iter(json.loads(shares.read_text()).values())).values())
        out["kitti_hazard"] = sum(f["hazard"] for f in frames) / len(frames)
    return out


STREET_CLASSES = ("background", "road", "obstacle")  # the golf classes CamVid's streets hold


def depth_score(m: dict[str, dict]) -> float:
    """The real dev depth score: mean of metric and median-scaled AbsRel over KITTI and RELLIS."""
    return sum(m[s]["abs_rel"] + m[s]["ms_abs_rel"] for s in ("kitti", "rellis")) / 4


def class_iou(results: dict, name: str) -> float | None:
    """One class's IoU from a `meco eval` JSON (None: the JSON has no per-class IoUs)."""
    return dict(zip(results.get("class_names", []), results.get("iou_per_class", []))).get(name)


def cell(value: float | None, width: int, decimals: int) -> str:
    """A right-aligned table cell; '-' for a score the JSONs do not hold."""
    return f"{'-':>{width}}" if value is None else f"{value:>{width}.{decimals}f}"


def passes(c: dict[str, float], base: dict[str, float]) -> bool:
    gain = c["ycor_miou"] - base["ycor_miou"] >= 2.0 or base["depth"] - c["depth"] >= 0.02
    no_loss = c["ycor_miou"] >= base["ycor_miou"] - 1.0 and c["depth"] <= base["depth"] + 0.01
    return gain and no_loss and c["synth_abs_rel"] <= 0.118


def winner_v3(passing: list[tuple[str, dict[str, float]]]) -> str:
    best = min(passing, key=lambda r: r[1]["depth"])
    better_seg = [r for r in passing if r[1]["ycor_miou"] > best[1]["ycor_miou"] + 1.0]
    return (max(better_seg, key=lambda r: r[1]["ycor_miou"]) if better_seg else best)[0]


def eligible_v5(c: dict[str, float], base: dict[str, float]) -> bool:
    return (c["synth_abs_rel"] <= 0.110 and c["synth_miou"] >= 85.0 and c["depth"] <= base["depth"] + 0.01
            and c["camvid_streets"] >= base["camvid_streets"] - 2.0)


def best_gain(eligible: list[tuple[str, dict[str, float]]], base: dict[str, float], key: str) -> str | None:
    """The highest `key` ships if >= 2 points above the shipped one's; within 1 point of it, the lower depth score."""
    top = max(eligible, key=lambda r: r[1][key])
    if top[1][key] < base[key] + 2.0:
        return None
    close = [r for r in eligible if r[1][key] >= top[1][key] - 1.0]
    return min(close, key=lambda r: r[1]["depth"])[0]


def winner_v5(eligible: list[tuple[str, dict[str, float]]], base: dict[str, float]) -> str | None:
    return best_gain(eligible, base, "ycor_miou")


def eligible_v6(c: dict[str, float], base: dict[str, float]) -> bool:
    if "kitti_hazard" not in c or "kitti_hazard" not in base:
        raise SystemExit("rule v6 needs kitti_class_shares.json in every directory (tools/real_dev_eval.sh writes it)")
    return (c["synth_abs_rel"] <= 0.100 and c["synth_miou"] >= 85.0 and c["depth"] <= base["depth"] + 0.01
            and c["camvid_streets"] >= base["camvid_streets"] - 1.0 and c["ycor_miou"] >= base["ycor_miou"] - 1.5)


def winner_v6(eligible: list[tuple[str, dict[str, float]]], base: dict[str, float]) -> str | None:
    low = min(eligible, key=lambda r: r[1]["kitti_hazard"])
    if low[1]["kitti_hazard"] > base["kitti_hazard"] - 4.0:
        return None
    close = [r for r in eligible if r[1]["kitti_hazard"] <= low[1]["kitti_hazard"] + 1.0]
    return max(close, key=lambda r: r[1]["ycor_miou"])[0]


def winner_v7(eligible: list[tuple[str, dict[str, float]]], base: dict[str, float]) -> str | None:
    qualifying = [r for r in eligible if r[1]["kitti_hazard"] <= base["kitti_hazard"] - 4.0
                  or (r[1]["depth"] <= base["depth"] - 0.02 and r[1]["kitti_hazard"] <= base["kitti_hazard"] + 1.0)]
    if not qualifying:
        return None
    low = min(r[1]["kitti_hazard"] for r in qualifying)
    return min((r for r in qualifying if r[1]["kitti_hazard"] <= low + 1.0), key=lambda r: r[1]["depth"])[0]


def eligible_v9(c: dict[str, float], base: dict[str, float]) -> bool:
    return eligible_v6(c, base) and c["kitti_hazard"] <= base["kitti_hazard"] + 2.0


def eligible_v10(c: dict[str, float], base: dict[str, float]) -> bool:
    if c["real_ground"] is None or base["real_ground"] is None:
        raise SystemExit("rule v10 needs miou_gt in ycor_val.json and rellis.json (rerun tools/real_dev_eval.sh)")
    guards = dict(c, ycor_miou=c["ycor_miou_gt"]), dict(base, ycor_miou=base["ycor_miou_gt"])
    return eligible_v9(*guards) and c["rellis_fairway"] >= base["rellis_fairway"] - 10.0


def winner_v10(eligible: list[tuple[str, dict[str, float]]], base: dict[str, float]) -> str | None:
    return best_gain(eligible, base, "real_ground")


def eligible_v11(c: dict[str, float], base: dict[str, float]) -> bool:
    rellis_ok = c["rellis_miou_gt"] is not None and c["rellis_miou_gt"] >= base["rellis_miou_gt"] - 2.0
    return eligible_v10(dict(c, ycor_miou_gt=base["ycor_miou_gt"]), base) and rellis_ok


def winner_v11(eligible: list[tuple[str, dict[str, float]]], base: dict[str, float]) -> str:
    return min(eligible, key=lambda r: r[1]["depth"])[0]


def neighbours_gate(base_on_half: dict[str, float], measured: dict[str, float]) -> bool:
    """Rule v11's measurement: what training on a frame's neighbours is worth on unseen block frames."""
    gain = measured["ycor_miou_gt"] - base_on_half["ycor_miou_gt"]
    ok = gain >= 2.0 and measured["ycor_fairway"] >= base_on_half["ycor_fairway"]
    print(f"neighbours measurement on the frames it never saw: miou_gt {base_on_half['ycor_miou_gt']:.2f} -> "
          f"{measured['ycor_miou_gt']:.2f} ({gain:+.2f}, >= +2 asked), fairway {base_on_half['ycor_fairway']:.1f} -> "
          f"{measured['ycor_fairway']:.1f} (no lower asked): {'holds' if ok else 'fails'}")
    return ok


def balance_gate(baseline_dir: Path, measured_dir: Path) -> bool:
    """Rule v15's measurement: the grey-world balance's cost on clean frames neither model saw."""
    base, meas = (json.loads((d / "ycor_val.json").read_text()) for d in (baseline_dir, measured_dir))
    ok = (base["miou_gt"] - meas["miou_gt"] <= 1.0
          and class_iou(base, "fairway") - class_iou(meas, "fairway") <= 1.0)
    print(f"balance measurement on {meas.get('frames', '?')} unseen frames: miou_gt {base['miou_gt']:.2f} -> "
          f"{meas['miou_gt']:.2f}, fairway {class_iou(base, 'fairway'):.2f} -> {class_iou(meas, 'fairway'):.2f} "
          f"(each at most 1 lower asked): {'holds' if ok else 'fails'}")
    return ok


def shift_scores(run: Path) -> dict[str, float]:
    """Means over the conditions of a tools/camera_shift_eval.sh directory (and the clean frames')."""
    conds = sorted(d for d in run.iterdir() if d.is_dir())
    if not conds or "clean" not in {d.name for d in conds}:
        raise SystemExit(f"{run}: no camera_shift_eval conditions (clean, warm, ...); run tools/camera_shift_eval.sh")
    rows = []
    for d in conds:
        m = {n: json.loads((d / f"{n}.json").read_text()) for n in ("ycor_val", "kitti", "rellis")}
        rows.append({"condition": d.name, "ycor_miou_gt": m["ycor_val"]["miou_gt"],
                     "ycor_fairway": class_iou(m["ycor_val"], "fairway"), "rellis_miou_gt": m["rellis"]["miou_gt"],
                     "depth": depth_score(m)})
    mean = {k: sum(r[k] for r in rows) / len(rows) for k in ("ycor_miou_gt", "ycor_fairway", "rellis_miou_gt", "depth")}
    clean = next(r for r in rows if r["condition"] == "clean")
    return {**mean, "ycor_miou_gt_clean": clean["ycor_miou_gt"], "ycor_fairway_clean": clean["ycor_fairway"],
            "conditions": [r["condition"] for r in rows],
            "ycor_miou_gt_by_condition": {r["condition"]: r["ycor_miou_gt"] for r in rows}}


def camera_gate(base: dict[str, float], measured: dict[str, float], min_gain: float = 2.0) -> bool:
    """Rule v12's (v14's) measurement: a change for other cameras' looks, on block frames neither model saw."""
    if base["conditions"] != measured["conditions"]:
        raise SystemExit(f"rule v12: conditions differ: {base['conditions']} vs {measured['conditions']}")
    gain = measured["ycor_miou_gt"] - base["ycor_miou_gt"]
    clean_drop = base["ycor_miou_gt_clean"] - measured["ycor_miou_gt_clean"]
    ok = gain >= min_gain and measured["ycor_fairway"] >= base["ycor_fairway"] and clean_drop <= 1.0
    print(f"camera-look measurement over {len(base['conditions'])} conditions on the block frames neither saw: mean "
          f"miou_gt {base['ycor_miou_gt']:.2f} -> {measured['ycor_miou_gt']:.2f} ({gain:+.2f}, >= +{min_gain:g} asked), mean "
          f"fairway {base['ycor_fairway']:.1f} -> {measured['ycor_fairway']:.1f} (no lower asked), clean miou_gt "
          f"{base['ycor_miou_gt_clean']:.2f} -> {measured['ycor_miou_gt_clean']:.2f} (at most 1 lower asked): "
          f"{'holds' if ok else 'fails'}")
    return ok


SENSOR_CONDITIONS = ("blur", "noise", "jpeg")  # rule v17's: what camera_look_parts [blur, noise, jpeg] trains


def sensor_gate(base_dir: Path, measured_dir: Path) -> bool:
    """Rule v17's measurement: a sensor-look change, on half-split frames neither model saw."""
    base, meas = shift_scores(base_dir), shift_scores(measured_dir)
    if base["conditions"] != meas["conditions"]:
        raise SystemExit(f"rule v17: conditions differ: {base['conditions']} vs {meas['conditions']}")
    sensor_base, sensor_meas = (sum(s["ycor_miou_gt_by_condition"][c] for c in SENSOR_CONDITIONS) / len(SENSOR_CONDITIONS)
                                for s in (base, meas))
    sensor_gain = sensor_meas - sensor_base
    fairway_drop = base["ycor_fairway_clean"] - meas["ycor_fairway_clean"]
    clean_drop = base["ycor_miou_gt_clean"] - meas["ycor_miou_gt_clean"]
    ok = (sensor_gain >= 1.0 and meas["ycor_miou_gt"] >= base["ycor_miou_gt"] and clean_drop <= 1.0
          and fairway_drop <= 1.0)
    print(f"sensor-look measurement on the frames neither saw: blur/noise/JPEG mean miou_gt {sensor_base:.2f} -> "
          f"{sensor_meas:.2f} ({sensor_gain:+.2f}, >= +1 asked), mean over {len(base['conditions'])} "
          f"conditions {base['ycor_miou_gt']:.2f} -> {meas['ycor_miou_gt']:.2f} (no lower asked), clean miou_gt "
          f"{-clean_drop:+.2f} and fairway {-fairway_drop:+.2f} (each at most 1 lower asked): {'holds' if ok else 'fails'}")
    return ok


def blur_gate(base_dir: Path, cand_dir: Path) -> bool:
    """Rule v17's depth check: KITTI's metric AbsRel under blur (camera_shift_eval directories) no higher."""
    base, cand = (json.loads((d / "blur" / "kitti.json").read_text())["abs_rel"] for d in (base_dir, cand_dir))
    print(f"KITTI metric AbsRel under blur: {base:.3f} -> {cand:.3f} (no higher asked)")
    return cand <= base


ZOOM_VIEWS = ("zoom_level", "zoom_x1.2", "zoom_x1.4", "zoom_x1.8", "zoom_x2.2")  # tools/camera_views.py


def zoom_abs_rel(views_dir: Path) -> float:
    """Mean metric AbsRel over the zoom views of KITTI and RELLIS (a tools/camera_views_eval.sh directory)."""
    runs = [json.loads((views_dir / v / f"{n}.json").read_text())["abs_rel"] for v in ZOOM_VIEWS for n in ("kitti", "rellis")]
    return sum(runs) / len(runs)


def zoom_gate(base_dir: Path, cand_dir: Path) -> bool:
    """Rule v18's lens check: metric depth through longer lenses on the real lidar frames."""
    base, cand = zoom_abs_rel(base_dir), zoom_abs_rel(cand_dir)
    ok = base - cand >= 0.03
    print(f"mean metric AbsRel over the zoom views {', '.join(ZOOM_VIEWS)} (KITTI, RELLIS): {base:.4f} -> {cand:.4f} "
          f"({cand - base:+.4f}, <= -0.03 asked): {'holds' if ok else 'fails'}")
    return ok


PITCH_GROUPS = {"pitch_level": ("pitch_down2.5", "pitch_up2.5"), "pitch5_level": ("pitch5_down5", "pitch5_up5")}


def pitch_scores(views_dir: Path) -> tuple[float, float]:
    """(pitch sensitivity, mean metric AbsRel) over the pitch groups of KITTI and RELLIS: the mean of
    |ln(median scale of a pitched view / its group's level view's)|, and the mean AbsRel of all six views."""
    def load(view: str, n: str) -> dict:
        return json.loads((views_dir / view / f"{n}.json").read_text())
    shifts, abs_rels = [], []
    for level, turned in PITCH_GROUPS.items():
        for n in ("kitti", "rellis"):
            base = load(level, n)
            abs_rels.append(base["abs_rel"])
            for view in turned:
                m = load(view, n)
                shifts.append(abs(math.log(m["ms_scale_median"] / base["ms_scale_median"])))
                abs_rels.append(m["abs_rel"])
    return sum(shifts) / len(shifts), sum(abs_rels) / len(abs_rels)


def pitch_gate(base_dir: Path, cand_dir: Path) -> bool:
    """Rule v19's mount check: depth that follows the horizon when the camera pitches, on the real lidar frames."""
    (base_shift, base_abs), (cand_shift, cand_abs) = pitch_scores(base_dir), pitch_scores(cand_dir)
    ok = cand_shift <= 0.7 * base_shift and cand_abs <= base_abs + 0.01
    print(f"pitch sensitivity (mean |ln scale ratio| pitched vs level, KITTI and RELLIS, +-2.5 and +-5 deg): "
          f"{base_shift:.4f} -> {cand_shift:.4f} (at most 0.7x asked), mean metric AbsRel over the six views "
          f"{base_abs:.4f} -> {cand_abs:.4f} (at most +0.01): {'holds' if ok else 'fails'}")
    return ok


def eligible_v12(c: dict[str, float], base: dict[str, float], c_shift: dict[str, float],
                 base_shift: dict[str, float]) -> bool:
    ok = (eligible_v11(c, base) and c_shift["depth"] <= base_shift["depth"] + 0.01
          and c_shift["rellis_miou_gt"] >= base_shift["rellis_miou_gt"] - 2.0)
    print(f"over the conditions: depth score {base_shift['depth']:.4f} -> {c_shift['depth']:.4f} (at most +0.01), "
          f"RELLIS miou_gt {base_shift['rellis_miou_gt']:.2f} -> {c_shift['rellis_miou_gt']:.2f} (at most 2 lower)")
    return ok


RULES = {"v3": (passes, lambda passing, base: winner_v3(passing)), "v5": (eligible_v5, winner_v5),
         "v6": (eligible_v6, winner_v6), "v7": (eligible_v6, winner_v7), "v9": (eligible_v9, winner_v5),
         "v10": (eligible_v10, winner_v10), "v11": (eligible_v11, winner_v11), "v12": (eligible_v11, winner_v11),
         "v14": (eligible_v11, winner_v11), "v16": (eligible_v11, winner_v11), "v17": (eligible_v11, winner_v11),
         "v18": (eligible_v11, winner_v11),
         "v19": (eligible_v11, winner_v11)}
SHIFT_GATES = {  # rules with a measurement over two directories and a candidate judged over the conditions
    "v12": (lambda b, m: camera_gate(shift_scores(b), shift_scores(m), 2.0), "BASELINE_SHIFTS MEASUREMENT_SHIFTS"),
    "v14": (lambda b, m: camera_gate(shift_scores(b), shift_scores(m), 2.2), "BASELINE_SHIFTS MEASUREMENT_SHIFTS"),
    "v16": (balance_gate, "BASELINE_ON_HALF MEASUREMENT_ON_HALF"),
    "v17": (sensor_gate, "BASELINE_SHIFTS MEASUREMENT_SHIFTS"),
    "v18": (balance_gate, "BASELINE_ON_HALF MEASUREMENT_ON_HALF"),
    "v19": (balance_gate, "BASELINE_ON_HALF MEASUREMENT_ON_HALF"),
}
VIEW_GATES = {"v18": zoom_gate, "v19": pitch_gate}  # ... on the two models' camera_views_eval directories, last
MEASUREMENT_RULES = ("v13",)  # a gate between two measurements, no candidate (main)


def main(argv: list[str]) -> int:
    rule = "v3"
    if argv[:1] == ["--rule"]:
        rule, argv = argv[1], argv[2:]
    if rule not in RULES and rule not in MEASUREMENT_RULES:
        raise SystemExit(f"--rule must be one of {sorted([*RULES, *MEASUREMENT_RULES])}, got {rule!r}")
    base_dir, *cand_dirs = [Path(a) for a in argv]
    base = scores(base_dir)
    if rule == "v13":
        if len(cand_dirs) != 1:
            raise SystemExit("rule v13: BASELINE_ON_HALF CHANGE_ON_HALF")
        held = neighbours_gate(base, scores(cand_dirs[0]))
        print("the change carries to the next final fit" if held else "the change does not carry; the recipe stays")
        return 0
    check_rule, winner_rule = RULES[rule]
    gate = True
    if rule == "v11":
        if len(cand_dirs) < 3:
            raise SystemExit("rule v11: SHIPPED SHIPPED_ON_HALF MEASUREMENT_ON_HALF CANDIDATE...")
        gate = neighbours_gate(scores(cand_dirs[0]), scores(cand_dirs[1]))
        cand_dirs = cand_dirs[2:]
    views_ok = True
    if rule in VIEW_GATES:
        if len(cand_dirs) != 7:
            raise SystemExit(f"rule {rule}: SHIPPED SHIPPED_SHIFTS {SHIFT_GATES[rule][1]} CANDIDATE CANDIDATE_SHIFTS "
                             "SHIPPED_VIEWS CANDIDATE_VIEWS")
        views_ok, cand_dirs = VIEW_GATES[rule](cand_dirs[5], cand_dirs[6]), cand_dirs[:5]
    if rule in SHIFT_GATES:
        measure, names = SHIFT_GATES[rule]
        if len(cand_dirs) != 5:
            raise SystemExit(f"rule {rule}: SHIPPED SHIPPED_SHIFTS {names} CANDIDATE CANDIDATE_SHIFTS")
        base_shift_dir, cand_shift_dir = cand_dirs[0], cand_dirs[4]
        base_shift, cand_shift = shift_scores(base_shift_dir), shift_scores(cand_shift_dir)
        gate = measure(cand_dirs[1], cand_dirs[2])
        extra_ok = (rule != "v17" or blur_gate(base_shift_dir, cand_shift_dir)) and views_ok
        cand_dirs = cand_dirs[3:4]
        check_rule = lambda s, b: eligible_v12(s, b, cand_shift, base_shift) and extra_ok  # noqa: E731
    rows = [(base_dir.name, base, None)] + [(d.name, s, check_rule(s, base)) for d in cand_dirs for s in [scores(d)]]
    print(f"{'model':<22} {'depth score':>11} {'YCOR mIoU':>9} {'(GT classes)':>12} {'fairway':>7} {'synth AbsRel':>12} "
          f"{'synth mIoU':>10} {'CamVid streets':>14} {'KITTI hazard %':>14} {'RELLIS fairway':>14} "
          f"{'real ground':>11}  rule {rule}")
    for name, s, ok in rows:
        verdict = "shipped" if ok is None else (("passes" if rule == "v3" else "eligible") if ok else "fails")
        print(f"{name:<22} {s['depth']:>11.4f} {s['ycor_miou']:>9.2f} {cell(s['ycor_miou_gt'], 12, 2)} "
              f"{cell(s['ycor_fairway'], 7, 1)} {s['synth_abs_rel']:>12.4f} {s['synth_miou']:>10.2f} "
              f"{s['camvid_streets']:>14.2f} {cell(s.get('kitti_hazard'), 14, 2)} {cell(s['rellis_fairway'], 14, 1)} "
              f"{cell(s['real_ground'], 11, 2)}  {verdict}")
    passing = [(n, s) for n, s, ok in rows if ok]
    winner = winner_rule(passing, base) if passing and gate else None
    print(f"ships: {winner}" if winner else "ships: the current model (no candidate passes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
