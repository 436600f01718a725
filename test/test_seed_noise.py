"""tools/seed_noise.py: a recipe difference counts only when it beats both recipes' seed noise, on made-up scores."""
from __future__ import annotations

import json

import pytest
from test_golf_ship_rule import _scores
from tool_modules import load_tool


def test_verdict_by_hand():
    v = load_tool("seed_noise").verdict
    real = v(0.187, 0.190, 0.202, 0.205)          # +0.015 at both seeds, seed noise 0.003
    assert real["real"] and real["seed_noise"] == pytest.approx(0.003)
    assert real["diff_seed1"] == pytest.approx(0.015) and real["diff_seed2"] == pytest.approx(0.015)
    assert not v(52.7, 61.0, 60.7, 58.0)["real"]   # +8.0 then -3.0: the sign flips
    assert not v(52.7, 58.0, 60.7, 62.0)["real"]   # +8.0 and +4.0, but recipe A's seeds differ by 5.3
    assert not v(1.0, 1.0, 1.0, 1.0)["real"]       # no difference is not a real one


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
