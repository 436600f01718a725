"""The layout's promises: the model library (and its CLI commands) never imports meco_ros;
ROS commands join the CLI through the entry-point group; user errors end as one line."""
from __future__ import annotations

import subprocess
import sys

from meco_core.cli import main as meco

ROS_FREE = """
import importlib, pkgutil, sys
import meco_core
from meco_core.cli.app import build_parser
for module in pkgutil.walk_packages(meco_core.__path__, "meco_core."):
    importlib.import_module(module.name)
build_parser(plugins=False)
leaked = sorted(m for m in sys.modules if m.startswith(("meco_ros", "rclpy")))
assert not leaked, leaked
print("ok")
"""


def test_model_library_and_its_cli_never_import_ros() -> None:
    done = subprocess.run([sys.executable, "-c", ROS_FREE], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_ros_commands_join_through_the_entry_point_group() -> None:
    from importlib.metadata import entry_points

    from meco_core.cli.app import PLUGIN_GROUP, build_parser

    names = {e.name: e.value for e in entry_points(group=PLUGIN_GROUP)}
    assert names == {"node_bench": "meco_ros.commands.node_bench", "replay_eval": "meco_ros.commands.replay_eval"}
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"node-bench", "replay-eval", "train", "eval"} <= set(commands)
    assert "node-bench" not in build_parser(plugins=False)._subparsers._group_actions[0].choices


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [not, a, mapping]\n")
    assert meco(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("meco train: ") and "\n" not in err and "Traceback" not in err
