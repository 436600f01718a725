"""tools/seed_noise.py: a recipe difference counts only when it beats both recipes' seed noise, on made-up scores."""
from __future__ import annotations

import json

import pytest
from test_golf_ship_rule import _scores
from tool_modules import load_tool


def test_verdict_by_hand():
    v = load_tool("seed_noise").verdict
    real = v([0.187, 0.190], [0.202, 0.205])          # +0.015 at both seeds, seed noise 0.003
    assert real["real"] and real["seed_noise"] == pytest.approx(0.003)
    assert real["diff_seed1"] == pytest.approx(0.015) and real["diff_seed2"] == pytest.approx(0.015)
    assert not v([52.7, 61.0], [60.7, 58.0])["real"]   # +8.0 then -3.0: the sign flips
    assert not v([52.7, 58.0], [60.7, 62.0])["real"]   # +8.0 and +4.0, but recipe A's seeds differ by 5.3
    assert not v([1.0, 1.0], [1.0, 1.0])["real"]       # no difference is not a real one
    three = v([52.7, 46.8, 44.0], [60.7, 54.6, 52.0])  # +8.0 / +7.8 / +8.0, A's seeds spread 8.7: not "real" ...
    assert not three["real"] and three["seed_noise"] == pytest.approx(8.7)
    assert three["t"] > 30 and three["mean_diff"] == pytest.approx(7.9333, abs=1e-3)  # ... but t says it is


def test_paired_t_by_hand():
    t = load_tool("seed_noise").paired_t
    assert t([1.0, 2.0, 3.0]) == pytest.approx(2.0 / (1.0 / 3 ** 0.5))  # mean 2, sd 1, three seeds: 3.464
    assert t([-1.0, -2.0, -3.0]) == pytest.approx(-3.464, abs=1e-3)
    assert t([0.5, 0.5, 0.5]) == float("inf") and t([0.0, 0.0, 0.0]) == 0.0


def test_compare_reads_the_dev_directories_and_writes_json(tmp_path, capsys):
    runs = [_scores(tmp_path, name, depth=d, ycor=80.0, rellis_fairway=f)
            for name, d, f in (("a1", 0.187, 52.7), ("a2", 0.189, 58.0), ("b1", 0.202, 60.7), ("b2", 0.204, 62.0))]
    out = tmp_path / "noise.json"
    assert load_tool("seed_noise").main([*map(str, runs), "--json", str(out)]) == 0
    table = json.loads(out.read_text())["figures"]
    assert table["depth"]["real"] and not table["rellis_fairway"]["real"]
    assert "pitch_sensitivity" not in table  # no --views given
    printed = capsys.readouterr().out
    assert "depth score" in printed and "within noise" in printed


def test_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="not a directory"):
        load_tool("seed_noise").main([str(tmp_path / n) for n in ("a", "b", "c", "d")])


@pytest.mark.parametrize("argv, message", [
    (["a", "b", "c"], "the same seeds, at least two: 3 runs"),
    (["a", "b"], "at least two: 2 runs"),
    (["a", "b", "c", "d", "--views", "v1", "v2"], "one directory per run"),
    (["--rule", "v21", "a", "b", "c", "d"], "rule v21 judges 3 seeds per recipe, 2 given"),
    (["--rule", "v20", "a", "b", "c", "d", "e", "f"], "rule v20 judges 2 seeds per recipe, 3 given"),
])
def test_run_counts_are_checked_before_reading(tmp_path, argv, message):
    with pytest.raises(SystemExit, match=message):
        load_tool("seed_noise").main(argv)


def _rule_v20_runs(tmp_path, b_depth=(0.190, 0.195), b_fairway=(60.7, 61.0), b_hazard=2.0, b_synth=0.095,
                   b_synth_miou=90.0):
    a = [_scores(tmp_path, n, depth=d, ycor=80.0, rellis_fairway=f, hazard=[1.9, 0.0, 0.0])
         for n, d, f in (("a1", 0.187, 52.7), ("a2", 0.202, 46.8))]
    b = [_scores(tmp_path, "b1", depth=b_depth[0], ycor=80.0, rellis_fairway=b_fairway[0], hazard=[b_hazard] * 3,
                 synth_abs_rel=b_synth, synth_miou=b_synth_miou),
         _scores(tmp_path, "b2", depth=b_depth[1], ycor=80.0, rellis_fairway=b_fairway[1], hazard=[0.0] * 3,
                 synth_miou=b_synth_miou)]
    return [*a, *b]


def _v20_verdict(runs, capsys) -> str:
    assert load_tool("seed_noise").main(["--rule", "v20", *map(str, runs)]) == 0
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_rule_v20_ships_a_real_fairway_gain_with_depth_within_noise(tmp_path, capsys):
    # fairway +8.0 / +14.2 against seed differences 5.9 / 0.3: real; depth 0.1945 -> 0.1925 (A's seeds differ by 0.015)
    runs = _rule_v20_runs(tmp_path)
    assert _v20_verdict(runs, capsys) == f"ships: {runs[2]}"


@pytest.mark.parametrize("change", [
    dict(b_fairway=(52.0, 47.0)),          # 2: no real gain (depth within noise as well)
    dict(b_depth=(0.205, 0.210)),          # 3: two-seed mean 0.2075 > 0.1945 + 0.007 (the gain is still real)
    dict(b_hazard=4.5),                    # 4: KITTI hazard 4.5 > 0.63 + 2.0
    dict(b_synth=0.101),                   # 4: the synthetic bar
])
def test_rule_v20_refuses(tmp_path, capsys, change):
    assert _v20_verdict(_rule_v20_runs(tmp_path, **change), capsys).startswith("ships: the current model")


def test_rule_v20_refuses_a_figure_really_worse(tmp_path, capsys):
    # synthetic mIoU -3 at both seeds, A's and B's seeds equal: really worse, though above the bar of 85 and
    # though fairway really gains; only condition 1 fails
    runs = _rule_v20_runs(tmp_path, b_synth_miou=87.0)
    assert load_tool("seed_noise").main(["--rule", "v20", *map(str, runs)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[-1].startswith("ships: the current model")
    assert [ln.split()[0] for ln in lines[-5:-1]] == ["fails", "holds", "holds", "holds"]
    assert "synth_miou" in lines[-5]


A_DEPTH, A_FAIRWAY = (0.187, 0.202, 0.195), (52.7, 46.8, 50.0)


def _rule_v21_runs(tmp_path, b_depth=(0.190, 0.195, 0.200), b_fairway=(60.7, 54.6, 57.0), a_depth=A_DEPTH):
    a = [_scores(tmp_path, f"a{i}", depth=d, ycor=80.0, rellis_fairway=f, hazard=[1.9, 0.0, 0.0])
         for i, (d, f) in enumerate(zip(a_depth, A_FAIRWAY), 1)]
    b = [_scores(tmp_path, f"b{i}", depth=d, ycor=80.0, rellis_fairway=f, hazard=[2.0] * 3)
         for i, (d, f) in enumerate(zip(b_depth, b_fairway), 1)]
    return [*a, *b]


def _v21_lines(runs, capsys) -> list[str]:
    assert load_tool("seed_noise").main(["--rule", "v21", *map(str, runs)]) == 0
    return capsys.readouterr().out.strip().splitlines()


def test_rule_v21_ships_a_fairway_gain_that_replicates(tmp_path, capsys):
    # fairway +8.0 / +7.8 / +7.0: paired t 24.9; depth +0.003 / -0.007 / +0.005, means 0.1947 -> 0.1950
    runs = _rule_v21_runs(tmp_path)
    lines = _v21_lines(runs, capsys)
    assert lines[-1] == f"ships: {runs[3]}"
    assert [ln.split()[0] for ln in lines[-6:-1]] == ["holds"] * 5


@pytest.mark.parametrize("change, failing", [
    (dict(b_fairway=(60.7, 54.6, 49.0)), [1, 2]),                  # the fresh seed goes the other way (-1.0)
    (dict(b_fairway=(53.7, 54.6, 50.5)), [2]),                     # +1.0 / +7.8 / +0.5: all positive, t 1.3
    (dict(a_depth=(0.190, 0.191, 0.192), b_depth=(0.196, 0.1972, 0.1978)), [3]),  # +0.006 each seed: really
    # worse (t 34.6, mean 0.006 > A's sd 0.001) while the mean stays within +0.007
    (dict(b_depth=(0.201, 0.200, 0.205)), [4]),                    # +0.014 / -0.002 / +0.010: t 1.5, not really
])                                                                 # worse, but the mean rises 0.0073 > 0.007
def test_rule_v21_refuses(tmp_path, capsys, change, failing):
    lines = _v21_lines(_rule_v21_runs(tmp_path, **change), capsys)
    assert lines[-1] == "ships: the current model (rule v21 does not hold)"
    verdicts = [ln.split()[0] for ln in lines[-6:-1]]
    assert [i for i, v in enumerate(verdicts, 1) if v == "fails"] == failing


def test_rule_v21_a_consistent_but_immaterial_difference_is_not_really_worse():
    sn = load_tool("seed_noise")
    # depth +0.004 at every seed (t infinite) but A's own seeds spread with sd 0.0075: not really worse
    tiny = sn.verdict(list(A_DEPTH), [d + 0.004 for d in A_DEPTH])
    assert tiny["t"] > sn.T_CRIT_3_SEEDS and not sn.really_worse_by_t("depth", tiny)
    # the same in the better direction is never "worse"; for a higher-is-better figure a drop is
    assert not sn.really_worse_by_t("depth", sn.verdict([0.190, 0.191, 0.192], [0.180, 0.181, 0.182]))
    assert sn.really_worse_by_t("camvid_streets", sn.verdict([83.0, 83.5, 83.2], [80.0, 80.4, 80.3]))
