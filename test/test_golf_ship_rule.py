"""tools/golf_ship_rule.py: the rules that decide which golf weights ship, on made-up scores."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from tool_modules import load_tool


def _rule_module():
    return load_tool("golf_ship_rule")


def _scores(tmp: Path, name: str, *, depth: float, ycor: float, synth_abs_rel: float = 0.10,
            synth_miou: float = 90.0, streets: float = 82.0, hazard: list[float] | None = None,
            ycor_gt: float | None = None, rellis_gt: float | None = None, rellis_fairway: float = 40.0) -> Path:
    """A run directory whose tools/real_dev_eval.sh JSONs give these scores."""
    d = tmp / name
    d.mkdir()
    names = ["background", "fairway", "hazard", "road", "obstacle"]
    (d / "kitti.json").write_text(json.dumps({"abs_rel": depth, "ms_abs_rel": depth}))
    (d / "rellis.json").write_text(json.dumps({"abs_rel": depth, "ms_abs_rel": depth, "miou_gt": rellis_gt,
                                               "class_names": names, "iou_per_class": [0, rellis_fairway, 0, 0, 0]}))
    (d / "ycor_val.json").write_text(json.dumps({"miou": ycor, "miou_gt": ycor_gt}))
    (d / "synth_test.json").write_text(json.dumps({"abs_rel": synth_abs_rel, "miou": synth_miou}))
    (d / "camvid_val.json").write_text(json.dumps({"class_names": names,
                                                   "iou_per_class": [streets, 0.0, 0.0, streets, streets]}))
    if hazard is not None:  # tools/class_shares.py --json: {checkpoint: {frame: {class: %}}}
        frames = {f"{i:06d}": {"background": 50.0, "hazard": h} for i, h in enumerate(hazard)}
        (d / "kitti_class_shares.json").write_text(json.dumps({f"{name}.pt": frames}))
    return d


def _ships(argv: list[Path | str], capsys) -> str:
    assert _rule_module().main([str(a) for a in argv]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_v5_ships_the_best_eligible_ycor_gain(tmp_path, capsys):
    base = _scores(tmp_path, "base", depth=0.23, ycor=40.0)
    small = _scores(tmp_path, "small_gain", depth=0.22, ycor=41.5)  # +1.5 < 2 points
    big = _scores(tmp_path, "big_gain", depth=0.235, ycor=45.0)
    assert _ships(["--rule", "v5", base, small], capsys) == "ships: the current model (no candidate passes)"
    assert _ships(["--rule", "v5", base, small, big], capsys) == "ships: big_gain"


@pytest.mark.parametrize("bad", [dict(synth_abs_rel=0.111), dict(synth_miou=84.9), dict(depth=0.2401),
                                 dict(streets=79.9)])
def test_v5_guards_refuse_a_gain_that_costs_elsewhere(tmp_path, capsys, bad):
    base = _scores(tmp_path, "base", depth=0.23, ycor=40.0)
    kw = dict(depth=0.23, ycor=50.0) | bad
    cand = _scores(tmp_path, "cand", **kw)
    assert _ships(["--rule", "v5", base, cand], capsys) == "ships: the current model (no candidate passes)"


def test_v5_tie_within_one_point_goes_to_lower_depth(tmp_path, capsys):
    base = _scores(tmp_path, "base", depth=0.23, ycor=40.0)
    a = _scores(tmp_path, "a", depth=0.235, ycor=45.0)
    b = _scores(tmp_path, "b", depth=0.225, ycor=44.2)
    assert _ships(["--rule", "v5", base, a, b], capsys) == "ships: b"


def test_v3_rule_prefers_depth_unless_segmentation_is_clearly_better(tmp_path, capsys):
    base = _scores(tmp_path, "base", depth=0.32, ycor=38.1, synth_abs_rel=0.113)
    v3 = _scores(tmp_path, "v3", depth=0.229, ycor=38.6, synth_abs_rel=0.104)
    v4 = _scores(tmp_path, "v4", depth=0.234, ycor=39.5, synth_abs_rel=0.105)
    assert _ships([base, v3, v4], capsys) == "ships: v3"


def test_v6_ships_the_lowest_eligible_paved_as_hazard_share(tmp_path, capsys):
    base = _scores(tmp_path, "base", depth=0.207, ycor=45.3, hazard=[18.6, 13.2, 5.5])   # mean 12.43
    small = _scores(tmp_path, "small_drop", depth=0.207, ycor=45.3, hazard=[14.0, 10.0, 5.0])  # 9.67: < 4 points
    big = _scores(tmp_path, "big_drop", depth=0.21, ycor=44.0, hazard=[6.0, 3.0, 1.0])   # 3.33
    assert _ships(["--rule", "v6", base, small], capsys) == "ships: the current model (no candidate passes)"
    assert _ships(["--rule", "v6", base, small, big], capsys) == "ships: big_drop"
    close = _scores(tmp_path, "close_better_ycor", depth=0.21, ycor=45.0, hazard=[7.0, 3.0, 2.0])  # 4.0: within 1
    assert _ships(["--rule", "v6", base, big, close], capsys) == "ships: close_better_ycor"


@pytest.mark.parametrize("bad", [dict(synth_abs_rel=0.101), dict(synth_miou=84.9), dict(depth=0.2171),
                                 dict(streets=80.9), dict(ycor=43.7)])
def test_v6_guards_refuse_a_drop_that_costs_elsewhere(tmp_path, capsys, bad):
    base = _scores(tmp_path, "base", depth=0.207, ycor=45.3, hazard=[18.6, 13.2, 5.5])
    cand = _scores(tmp_path, "cand", **(dict(depth=0.207, ycor=45.3, hazard=[1.0, 1.0, 1.0]) | bad))
    assert _ships(["--rule", "v6", base, cand], capsys) == "ships: the current model (no candidate passes)"


def test_v6_needs_the_class_shares(tmp_path):
    base = _scores(tmp_path, "base", depth=0.207, ycor=45.3)
    cand = _scores(tmp_path, "cand", depth=0.207, ycor=45.3, hazard=[1.0])
    with pytest.raises(SystemExit, match="kitti_class_shares.json"):
        _rule_module().main(["--rule", "v6", str(base), str(cand)])


def test_v7_ships_a_hazard_drop_or_a_depth_gain_that_keeps_the_hazard_share(tmp_path, capsys):
    base = _scores(tmp_path, "base", depth=0.207, ycor=45.3, hazard=[18.6, 13.2, 5.5])       # 12.43
    neither = _scores(tmp_path, "neither", depth=0.195, ycor=45.3, hazard=[15.0, 12.0, 5.0])  # -0.012, 10.67
    depth_worse_hazard = _scores(tmp_path, "depth_but_hazard", depth=0.18, ycor=45.3, hazard=[20.0, 14.0, 7.0])  # +1.2
    depth_gain = _scores(tmp_path, "depth_gain", depth=0.185, ycor=45.3, hazard=[19.0, 14.0, 6.0])   # 13.0: +0.57
    assert _ships(["--rule", "v7", base, neither, depth_worse_hazard], capsys) == \
        "ships: the current model (no candidate passes)"
    assert _ships(["--rule", "v7", base, neither, depth_gain], capsys) == "ships: depth_gain"
    hazard_drop = _scores(tmp_path, "hazard_drop", depth=0.210, ycor=45.0, hazard=[8.0, 6.0, 2.0])   # 5.33
    assert _ships(["--rule", "v7", base, depth_gain, hazard_drop], capsys) == "ships: hazard_drop"
    close = _scores(tmp_path, "close_lower_depth", depth=0.200, ycor=45.0, hazard=[9.0, 6.0, 3.0])   # 6.0: within 1
    assert _ships(["--rule", "v7", base, hazard_drop, close], capsys) == "ships: close_lower_depth"


def test_v7_keeps_v6s_guards(tmp_path, capsys):
    base = _scores(tmp_path, "base", depth=0.207, ycor=45.3, hazard=[18.6, 13.2, 5.5])
    cand = _scores(tmp_path, "cand", depth=0.207, ycor=43.7, hazard=[1.0, 1.0, 1.0])   # YCOR -1.6
    assert _ships(["--rule", "v7", base, cand], capsys) == "ships: the current model (no candidate passes)"


def test_v9_ships_a_ycor_gain_that_keeps_the_hazard_share(tmp_path, capsys):
    base = _scores(tmp_path, "base", depth=0.202, ycor=44.7, hazard=[4.1, 0.2, 0.0])          # 1.43
    small = _scores(tmp_path, "small_gain", depth=0.200, ycor=46.5, hazard=[4.0, 0.2, 0.0])    # +1.8: too small
    assert _ships(["--rule", "v9", base, small], capsys) == "ships: the current model (no candidate passes)"
    hazard_up = _scores(tmp_path, "hazard_up", depth=0.200, ycor=50.0, hazard=[8.0, 2.0, 1.0])  # 3.67: +2.2
    assert _ships(["--rule", "v9", base, small, hazard_up], capsys) == \
        "ships: the current model (no candidate passes)"
    gain = _scores(tmp_path, "gain", depth=0.210, ycor=48.0, hazard=[6.0, 1.0, 0.0])            # 2.33: +0.9
    assert _ships(["--rule", "v9", base, small, gain], capsys) == "ships: gain"
    close = _scores(tmp_path, "close_lower_depth", depth=0.205, ycor=47.2, hazard=[4.0, 0.0, 0.0])
    assert _ships(["--rule", "v9", base, gain, close], capsys) == "ships: close_lower_depth"
    deep = _scores(tmp_path, "depth_guard", depth=0.2121, ycor=52.0, hazard=[4.0, 0.0, 0.0])    # +0.0101
    assert _ships(["--rule", "v9", base, deep], capsys) == "ships: the current model (no candidate passes)"


def test_v10_ships_a_real_ground_gain_that_keeps_rellis_grass(tmp_path, capsys):
    """Real-ground score = mean of the YCOR block's and RELLIS's miou_gt; v9's failure (RELLIS grass) is a guard."""
    hz = [4.1, 0.2, 0.0]
    base = _scores(tmp_path, "base", depth=0.202, ycor=44.7, ycor_gt=55.9, rellis_gt=50.1, rellis_fairway=41.4, hazard=hz)
    small = _scores(tmp_path, "small", depth=0.20, ycor=44.7, ycor_gt=57.0, rellis_gt=51.0, rellis_fairway=41.0, hazard=hz)
    assert _ships(["--rule", "v10", base, small], capsys) == "ships: the current model (no candidate passes)"  # +1.0
    grass_lost = _scores(tmp_path, "grass_lost", depth=0.20, ycor=60.0, ycor_gt=60.0, rellis_gt=55.0,
                         rellis_fairway=31.0, hazard=hz)                                            # fairway -10.4
    assert _ships(["--rule", "v10", base, grass_lost], capsys) == "ships: the current model (no candidate passes)"
    block_down = _scores(tmp_path, "block_down", depth=0.20, ycor=50.0, ycor_gt=54.3, rellis_gt=60.0,
                         rellis_fairway=50.0, hazard=hz)                                           # block -1.6
    assert _ships(["--rule", "v10", base, block_down], capsys) == "ships: the current model (no candidate passes)"
    gain = _scores(tmp_path, "gain", depth=0.21, ycor=44.0, ycor_gt=57.0, rellis_gt=53.2, rellis_fairway=45.0, hazard=hz)
    assert _ships(["--rule", "v10", base, small, gain], capsys) == "ships: gain"                   # +2.1 (mIoU ignored)
    close = _scores(tmp_path, "close", depth=0.205, ycor=44.0, ycor_gt=56.5, rellis_gt=53.0, rellis_fairway=45.0,
                    hazard=hz)
    assert _ships(["--rule", "v10", base, gain, close], capsys) == "ships: close"
    with pytest.raises(SystemExit, match="miou_gt"):
        _rule_module().main(["--rule", "v10", str(base), str(_scores(tmp_path, "old", depth=0.2, ycor=50.0, hazard=hz))])


def test_v11_gates_a_final_fit_by_its_twin_on_unseen_block_frames(tmp_path, capsys):
    """A model trained on the block ships only if its twin gained >= 2 (fairway not lower) on the block
    frames the twin never saw, and it passes v10's guards without the block's, RELLIS miou_gt >= base - 2."""
    hz = [4.1, 0.2, 0.0]

    def run(name, *, ycor_gt=55.9, fairway=None, **kw):
        d = _scores(tmp_path, name, ycor=ycor_gt, ycor_gt=ycor_gt, hazard=hz, **(dict(depth=0.202, rellis_gt=50.1) | kw))
        if fairway is not None:  # the block's fairway IoU, for the twin's gate
            names = ["background", "fairway", "hazard", "road", "obstacle"]
            (d / "ycor_val.json").write_text(json.dumps({"miou": ycor_gt, "miou_gt": ycor_gt, "class_names": names,
                                                         "iou_per_class": [80.0, fairway, 90.0, None, 1.0]}))
        return d

    base = run("base", rellis_fairway=41.4)
    base_half = run("base_half", ycor_gt=58.1, fairway=56.6, rellis_fairway=41.4)
    twin = run("twin", ycor_gt=64.7, fairway=63.6, rellis_fairway=2.5)        # its own RELLIS is not judged
    fit = run("fit", ycor_gt=40.0, rellis_fairway=42.8, rellis_gt=52.2)       # the block's guard is not applied
    assert _ships(["--rule", "v11", base, base_half, twin, fit], capsys) == "ships: fit"
    small = run("small", ycor_gt=60.0, fairway=60.0)                           # +1.9 < 2
    assert _ships(["--rule", "v11", base, base_half, small, fit], capsys) == "ships: the current model (no candidate passes)"
    fairway_down = run("fairway_down", ycor_gt=62.0, fairway=56.0)            # fairway lower
    assert _ships(["--rule", "v11", base, base_half, fairway_down, fit], capsys) == \
        "ships: the current model (no candidate passes)"
    rellis_down = run("rellis_down", rellis_fairway=42.8, rellis_gt=48.0)      # RELLIS miou_gt -2.1
    grass_lost = run("grass_lost", rellis_fairway=31.0, rellis_gt=52.0)        # RELLIS fairway -10.4
    deeper = run("deeper", depth=0.2125, rellis_fairway=42.8)                  # depth score +0.0105
    for bad in (rellis_down, grass_lost, deeper):
        assert _ships(["--rule", "v11", base, base_half, twin, bad], capsys) == \
            "ships: the current model (no candidate passes)", bad.name
    with pytest.raises(SystemExit, match="MEASUREMENT_ON_HALF"):
        _rule_module().main(["--rule", "v11", str(base), str(base_half), str(twin)])


def _shift_dir(tmp: Path, name: str, ycor: list[float], fairway: list[float], depth: list[float],
               rellis: list[float], conds: tuple[str, ...] = ("clean", "warm", "cool")) -> Path:
    """A tools/camera_shift_eval.sh directory: one condition per list entry, the first one clean."""
    d = tmp / name
    names = ["background", "fairway", "hazard", "road", "obstacle"]
    conds = list(conds)[: len(ycor)]
    for cond, y, f, dep, r in zip(conds, ycor, fairway, depth, rellis):
        (d / cond).mkdir(parents=True)
        (d / cond / "ycor_val.json").write_text(json.dumps({"miou_gt": y, "class_names": names,
                                                             "iou_per_class": [80.0, f, 90.0, None, 10.0]}))
        (d / cond / "kitti.json").write_text(json.dumps({"abs_rel": dep, "ms_abs_rel": dep}))
        (d / cond / "rellis.json").write_text(json.dumps({"abs_rel": dep, "ms_abs_rel": dep, "miou_gt": r}))
    return d


def test_v12_ships_a_camera_look_gain_measured_over_the_conditions(tmp_path, capsys):
    """The measurement: mean miou_gt over the conditions +2 (here the clean frames, warm and cool), mean
    fairway no lower, clean miou_gt at most 1 lower; the candidate: v11's guards on clean frames, mean depth
    score over the conditions at most +0.01 and the RELLIS frame's mean miou_gt at most 2 lower."""
    hz = [6.5, 0.5, 0.0]
    dev = dict(ycor=82.1, ycor_gt=82.1, hazard=hz, depth=0.201, rellis_gt=52.2, rellis_fairway=42.8)
    base, cand = _scores(tmp_path, "v15", **dev), _scores(tmp_path, "v16", **dev)
    base_shift = _shift_dir(tmp_path, "v15_shift", [82, 70, 68], [76, 60, 55], [0.20, 0.21, 0.22], [52, 60, 54])
    half = _shift_dir(tmp_path, "v15a_shift", [64.7, 58.3, 55.1], [63.6, 51.6, 43.6], [0.2] * 3, [35, 40, 38])
    good = _shift_dir(tmp_path, "v16a_shift", [64.2, 62.0, 61.0], [63.0, 60.0, 58.0], [0.2] * 3, [35, 40, 38])
    cand_shift = _shift_dir(tmp_path, "v16_shift", [82, 80, 79], [76, 74, 73], [0.205, 0.21, 0.215], [51, 58, 53])

    def ships(measured, candidate_shift=cand_shift, candidate=cand):
        return _ships(["--rule", "v12", base, base_shift, half, measured, candidate, candidate_shift], capsys)

    assert ships(good) == "ships: v16"
    small = _shift_dir(tmp_path, "small", [64.7, 59.0, 55.5], [64, 52, 44], [0.2] * 3, [35] * 3)      # +0.4
    clean_drop = _shift_dir(tmp_path, "clean_drop", [63.5, 63, 62], [63, 61, 59], [0.2] * 3, [35] * 3)  # clean -1.2
    fairway_down = _shift_dir(tmp_path, "fairway_down", [65, 62, 61], [60, 50, 45], [0.2] * 3, [35] * 3)
    for bad in (small, clean_drop, fairway_down):
        assert ships(bad) == "ships: the current model (no candidate passes)", bad.name
    deeper = _shift_dir(tmp_path, "deeper", [82, 80, 79], [76, 74, 73], [0.211, 0.221, 0.231], [51, 58, 53])  # +0.011
    rellis_down = _shift_dir(tmp_path, "rellis_down", [82, 80, 79], [76, 74, 73], [0.2] * 3, [49, 56, 55])  # -2.0 ok
    rellis_worse = _shift_dir(tmp_path, "rellis_worse", [82, 80, 79], [76, 74, 73], [0.2] * 3, [49, 56, 54])  # -2.33
    assert ships(good, deeper) == "ships: the current model (no candidate passes)"
    assert ships(good, rellis_down) == "ships: v16"
    assert ships(good, rellis_worse) == "ships: the current model (no candidate passes)"
    hazardous = _scores(tmp_path, "v16_hazard", **(dev | dict(hazard=[13.5, 0.5, 0.0])))  # v11's guard: mean +2.33
    assert ships(good, cand_shift, hazardous) == "ships: the current model (no candidate passes)"
    with pytest.raises(SystemExit, match="CANDIDATE_SHIFTS"):
        _rule_module().main(["--rule", "v12", str(base), str(base_shift), str(half), str(good), str(cand)])


def test_v13_is_a_measurement_gate_that_ships_nothing(tmp_path, capsys):
    """Two recipes on half of YCOR, scored on the other half: the change carries only with >= +2 miou_gt
    and fairway no lower (rule v11's gate); the rule never names a model to ship."""
    names = ["background", "fairway", "hazard", "road", "obstacle"]

    def half(name, miou_gt, fairway):
        d = _scores(tmp_path, name, depth=0.2, ycor=miou_gt, ycor_gt=miou_gt, rellis_gt=50.0)
        (d / "ycor_val.json").write_text(json.dumps({"miou": miou_gt, "miou_gt": miou_gt, "class_names": names,
                                                     "iou_per_class": [80.0, fairway, 90.0, None, 30.0]}))
        return d

    base = half("h3", 70.0, 65.0)
    for changed, carries in ((half("gain", 72.0, 65.0), True), (half("small", 71.9, 66.0), False),
                             (half("fairway_down", 75.0, 64.9), False)):
        assert _ships(["--rule", "v13", base, changed], capsys) == (
            "the change carries to the next final fit" if carries else "the change does not carry; the recipe stays")
    with pytest.raises(SystemExit, match="BASELINE_ON_HALF CHANGE_ON_HALF"):
        _rule_module().main(["--rule", "v13", str(base)])


def _half(tmp: Path, name: str, miou_gt: float, fairway: float) -> Path:
    """A run scored on the half split: only ycor_val.json (miou_gt and the fairway IoU)."""
    d = tmp / name
    d.mkdir()
    names = ["background", "fairway", "hazard", "road", "obstacle"]
    (d / "ycor_val.json").write_text(json.dumps({"miou_gt": miou_gt, "class_names": names,
                                                 "iou_per_class": [91.0, fairway, 93.0, 0.0, 60.0]}))
    return d


def test_v16_ships_the_balanced_candidate_when_the_half_split_measurement_holds(tmp_path, capsys):
    """Rule v15's measurement (ycor_val.json of two runs on the half split: miou_gt and fairway each at
    most 1 lower) gates a candidate judged by rule v12's candidate guards."""
    hz = [6.6, 0.5, 0.0]
    base = _scores(tmp_path, "v15", ycor=82.2, ycor_gt=82.2, hazard=hz, depth=0.2006, rellis_gt=52.7)
    cand = _scores(tmp_path, "v18", ycor=80.5, ycor_gt=80.5, hazard=[1.9, 0, 0], depth=0.1873, rellis_gt=64.8)
    base_shift = _shift_dir(tmp_path, "v15_shift", [87, 65, 82], [80, 65, 76], [0.20, 0.195, 0.198], [52, 53, 35])
    cand_shift = _shift_dir(tmp_path, "v18_shift", [86, 86, 87], [80, 79, 80], [0.187, 0.187, 0.199], [65, 67, 63])

    h3 = _half(tmp_path, "17h3", 75.72, 66.85)
    for measured, ships in ((_half(tmp_path, "19h", 78.91, 66.87), True), (_half(tmp_path, "costly", 74.6, 67.0), False),
                            (_half(tmp_path, "fairway_lost", 79.0, 65.8), False), (_half(tmp_path, "just", 74.72, 65.85), True)):
        assert _ships(["--rule", "v16", base, base_shift, h3, measured, cand, cand_shift], capsys) == (
            "ships: v18" if ships else "ships: the current model (no candidate passes)"), measured.name
    with pytest.raises(SystemExit, match="MEASUREMENT_ON_HALF"):
        _rule_module().main(["--rule", "v16", str(base), str(base_shift), str(h3), str(cand), str(cand_shift)])


def test_v17_asks_the_sensor_conditions_to_gain_and_kitti_blur_depth_not_to_worsen(tmp_path, capsys):
    """Measurement: the mean miou_gt over blur, noise and JPEG +1, the mean over every condition no
    lower, clean miou_gt and fairway at most 1 lower; candidate: rule v12's guards and KITTI's metric
    AbsRel under blur no higher than the shipped model's."""
    conds = ("clean", "blur", "noise", "jpeg", "warm")
    hz = [1.9, 0.0, 0.0]
    dev = dict(ycor=80.5, ycor_gt=80.5, hazard=hz, depth=0.187, rellis_gt=64.8, rellis_fairway=52.7)
    base, cand = _scores(tmp_path, "v18", **dev), _scores(tmp_path, "v20", **dev)

    def shift(name, ycor, fairway, depth, rellis=(64.8,) * 5):
        return _shift_dir(tmp_path, name, list(ycor), list(fairway), list(depth), list(rellis), conds)

    base_shift = shift("v18_shift", [86] * 5, [80] * 5, [0.19, 0.40, 0.19, 0.2, 0.19])
    h19 = shift("19h", [78.9, 77.0, 76.0, 74.0, 78.5], [66.9] * 5, [0.2] * 5)
    good = shift("20h", [78.5, 78.0, 77.0, 76.0, 78.0], [66.5] * 5, [0.2] * 5)       # sensor +1.33, mean +0.24
    cand_shift = shift("v20_shift", [86] * 5, [80] * 5, [0.19, 0.30, 0.19, 0.2, 0.19])

    def ships(measured, candidate_shift=cand_shift):
        return _ships(["--rule", "v17", base, base_shift, h19, measured, cand, candidate_shift], capsys)

    assert ships(good) == "ships: v20"
    small = shift("small", [78.9, 77.5, 76.5, 75.0, 78.5], [66.9] * 5, [0.2] * 5)           # sensor +0.67
    mean_down = shift("mean_down", [78.0, 78.0, 77.0, 75.0, 74.0], [66.9] * 5, [0.2] * 5)  # sensor +1, mean -0.48
    clean_down = shift("clean_down", [77.8, 79.0, 78.0, 76.0, 79.0], [66.9] * 5, [0.2] * 5)
    fairway_down = shift("fairway_down", [78.9, 78.0, 77.0, 76.0, 78.5], [65.8] + [66.9] * 4, [0.2] * 5)
    for bad in (small, mean_down, clean_down, fairway_down):
        assert ships(bad) == "ships: the current model (no candidate passes)", bad.name
    blurrier = shift("blurrier", [86] * 5, [80] * 5, [0.19, 0.41, 0.19, 0.2, 0.19])
    assert ships(good, blurrier) == "ships: the current model (no candidate passes)"


def test_v18_adds_the_zoom_views_to_rule_v16s_test(tmp_path, capsys):
    """Rule v16's measurement and candidate guards, and the candidate's mean metric AbsRel over the zoom
    views of KITTI and RELLIS (tools/camera_views_eval.sh directories) at least 0.03 below the shipped one's."""
    dev = dict(ycor=80.5, ycor_gt=80.5, hazard=[1.9, 0, 0], depth=0.187, rellis_gt=64.8, rellis_fairway=52.7)
    base, cand = _scores(tmp_path, "v18", **dev), _scores(tmp_path, "v21", **dev)
    base_shift = _shift_dir(tmp_path, "v18_shift", [86] * 3, [80] * 3, [0.19] * 3, [65] * 3)
    cand_shift = _shift_dir(tmp_path, "v21_shift", [86] * 3, [80] * 3, [0.19] * 3, [65] * 3)

    def views(name, kitti, rellis):
        for view, k, r in zip(_rule_module().ZOOM_VIEWS, kitti, rellis):
            (tmp_path / name / view).mkdir(parents=True)
            for n, v in (("kitti", k), ("rellis", r)):
                (tmp_path / name / view / f"{n}.json").write_text(json.dumps({"abs_rel": v}))
        return tmp_path / name

    h19, h21 = _half(tmp_path, "19h", 78.91, 66.87), _half(tmp_path, "21h", 78.5, 66.0)
    v18_views = views("v18_views", [0.21, 0.20, 0.21, 0.21, 0.27], [0.26, 0.32, 0.44, 0.50, 0.52])  # mean 0.314
    better = views("better", [0.21, 0.20, 0.21, 0.21, 0.25], [0.21, 0.24, 0.35, 0.44, 0.50])        # -0.032
    barely = views("barely", [0.21, 0.20, 0.21, 0.21, 0.26], [0.24, 0.29, 0.40, 0.47, 0.50])        # -0.015

    def ships(measured, cand_views):
        return _ships(["--rule", "v18", base, base_shift, h19, measured, cand, cand_shift, v18_views, cand_views], capsys)

    assert ships(h21, better) == "ships: v21"
    assert ships(h21, barely) == "ships: the current model (no candidate passes)"
    assert ships(_half(tmp_path, "costly", 77.8, 66.9), better) == "ships: the current model (no candidate passes)"
    with pytest.raises(SystemExit, match="SHIPPED_VIEWS CANDIDATE_VIEWS"):
        _rule_module().main(["--rule", "v18", *map(str, (base, base_shift, h19, h21, cand, cand_shift))])


def test_v19_asks_depth_to_follow_the_horizon_when_the_camera_pitches(tmp_path, capsys):
    """Rule v18's test with the pitch groups: pitch sensitivity (mean |ln scale ratio| pitched vs level) at
    most 0.7x the shipped model's, the mean metric AbsRel over the six views at most +0.01."""
    dev = dict(ycor=80.5, ycor_gt=80.5, hazard=[1.9, 0, 0], depth=0.187, rellis_gt=64.8, rellis_fairway=52.7)
    base, cand = _scores(tmp_path, "v18", **dev), _scores(tmp_path, "v22", **dev)
    base_shift = _shift_dir(tmp_path, "v18_shift", [86] * 3, [80] * 3, [0.19] * 3, [65] * 3)
    cand_shift = _shift_dir(tmp_path, "v22_shift", [86] * 3, [80] * 3, [0.19] * 3, [65] * 3)
    h_base, h_meas = _half(tmp_path, "19h", 78.91, 66.87), _half(tmp_path, "22h", 78.5, 66.5)

    def views(name, rellis_scales, abs_rel=0.3):
        """KITTI level at scale 1.2 and unmoved; RELLIS's six views (level, down, up for each group) as given."""
        order = ("pitch_level", "pitch_down2.5", "pitch_up2.5", "pitch5_level", "pitch5_down5", "pitch5_up5")
        for view, r in zip(order, rellis_scales):
            (tmp_path / name / view).mkdir(parents=True)
            for n, scale in (("kitti", 1.2), ("rellis", r)):
                (tmp_path / name / view / f"{n}.json").write_text(json.dumps({"abs_rel": abs_rel, "ms_scale_median": scale}))
        return tmp_path / name

    shipped = views("v18_views", [0.67, 0.65, 0.86, 0.63, 0.57, 0.90])  # as v18 on RELLIS
    steady = views("steady", [0.80, 0.78, 0.84, 0.80, 0.75, 0.86])
    steady_worse = views("steady_worse", [0.80, 0.78, 0.84, 0.80, 0.75, 0.86], abs_rel=0.311)
    not_enough = views("not_enough", [0.67, 0.65, 0.82, 0.63, 0.58, 0.84])  # 0.82x of the shipped sensitivity

    def ships(cand_views):
        return _ships(["--rule", "v19", base, base_shift, h_base, h_meas, cand, cand_shift, shipped, cand_views], capsys)

    assert ships(steady) == "ships: v22"
    for bad in (steady_worse, not_enough):
        assert ships(bad) == "ships: the current model (no candidate passes)", bad.name
