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
