"""tools/depth_bands.py: depth by true distance side by side, on made-up `meco eval` JSONs."""
from __future__ import annotations

import json

import pytest
from tool_modules import load_tool


def _run(tmp_path, name: str, ratios: list[float], edges=(0.0, 10.0, 20.0, 40.0, 80.0)) -> str:
    d = tmp_path / name
    d.mkdir()
    bands = [{"from_m": lo, "to_m": hi, "pixels": 10, "share": 0.25, "abs_rel": None if r is None else abs(r - 1.0),
              "gt_over_pred_median": r}
             for lo, hi, r in zip(edges[:-1], edges[1:], ratios)]
    for dataset in ("kitti", "rellis"):
        (d / f"{dataset}.json").write_text(json.dumps({"abs_rel": 0.2, "depth_bands": bands,
                                                     "depth_bands_by_pred": bands[::-1]}))
    return f"{name}={d}"


def test_table_and_plot(tmp_path, capsys):
    a = _run(tmp_path, "old", [1.05, 1.14, 1.45, 2.15])
    b = _run(tmp_path, "new", [1.02, 1.05, 1.10, None])  # a band without pixels reads '-'
    png, out = tmp_path / "bands.png", tmp_path / "bands.json"
    assert load_tool("depth_bands").main([a, b, "--png", str(png), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "40-80 m (25.0 %)" in printed
    assert "2.15 / 1.150" in printed and "1.10 / 0.100" in printed and "- / -" in printed
    assert png.stat().st_size > 1000
    assert json.loads(out.read_text())["rellis"]["new"][2]["gt_over_pred_median"] == 1.10


def test_clear_errors(tmp_path):
    tool = load_tool("depth_bands")
    a = _run(tmp_path, "a", [1.0] * 4)
    short = _run(tmp_path, "short", [1.0] * 3, edges=(0.0, 10.0, 20.0, 15.0))
    with pytest.raises(SystemExit, match="bands differ"):
        tool.main([a, short])
    old = tmp_path / "old"
    old.mkdir()
    (old / "kitti.json").write_text(json.dumps({"abs_rel": 0.2}))
    with pytest.raises(SystemExit, match="no depth_bands"):
        tool.main([f"old={old}", "--sets", "kitti"])
    with pytest.raises(SystemExit, match="no .*empty/kitti.json"):
        tool.main([f"empty={tmp_path / 'empty'}"])
    with pytest.raises(SystemExit):
        tool.main(["no-equals-sign"])


def test_by_predicted_distance(tmp_path, capsys):
    a = _run(tmp_path, "old", [1.05, 1.14, 1.45, 2.15])
    assert load_tool("depth_bands").main([a, "--by", "pred", "--sets", "kitti"]) == 0
    printed = capsys.readouterr().out
    assert "by predicted distance" in printed
    assert printed.splitlines()[-1].split()[1:4] == ["2.15", "/", "1.150"]  # that file's bands, reversed
    assert "(25 %)" in printed.splitlines()[-1]  # each model's own share in its cells
