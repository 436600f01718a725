"""The layout's promises: the model library (and its CLI commands) never imports meco_ros;
ROS commands join the CLI through the entry-point group; user errors end as one line;
imports point one way (`evaluation` never imports `train`; no module outside the CLI's
command modules imports one of them)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

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
    assert names == {"node_bench": "meco_ros.commands.node_bench", "node_soak": "meco_ros.commands.node_soak",
                     "node_faults": "meco_ros.commands.node_faults", "replay_eval": "meco_ros.commands.replay_eval"}
    commands = build_parser()._subparsers._group_actions[0].choices
    assert {"node-bench", "node-soak", "node-faults", "replay-eval", "train", "eval"} <= set(commands)
    assert "node-bench" not in build_parser(plugins=False)._subparsers._group_actions[0].choices


def test_user_errors_are_one_line_and_exit_2(tmp_path, capsys) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [not, a, mapping]\n")
    assert meco(["train", "--config", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("meco train: ") and "\n" not in err and "Traceback" not in err


# ---------------------------------------------------------------- import layering, read with ast
ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("meco_core", "meco_ros")


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in `path`, lazy ones inside functions included."""
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if path.name != "__init__.py":
        package = package.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[:len(parts) - node.level + 1] + ([base] if base else []))
            found.append((node.lineno, base))
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]  # `from pkg import module`
    return found


def _sources(*dirs: str) -> list[Path]:
    return sorted(p for d in dirs for p in (ROOT / d).rglob("*.py"))


def _offending(files: list[Path], forbidden: str) -> list[str]:
    return [f"{p.relative_to(ROOT)}:{line} imports {name}" for p in files for line, name in _imports(p)
            if name == forbidden or name.startswith(forbidden + ".")]


def test_evaluation_never_imports_train() -> None:
    """`train` uses `evaluation` (validation); what trains and then judges (`experiments.compare`)
    sits above both, so no import runs back up."""
    assert _offending(_sources("meco_core/evaluation"), "meco_core.train") == []
    assert not (ROOT / "meco_core/evaluation/compare.py").exists()


def test_nothing_outside_the_cli_commands_imports_a_command_module() -> None:
    """Command modules are leaves: what several need (parse_size, ...) lives in the library."""
    commands = ROOT / "meco_core/cli/commands"
    files = [p for p in _sources(*PACKAGES, "tools") if commands not in p.parents]
    assert _offending(files, "meco_core.cli.commands") == []


def test_the_import_reader_sees_relative_and_lazy_imports() -> None:
    """The checks above would pass vacuously if `_imports` missed imports: prove it does not."""
    assert "meco_core.train.config" in [n for _, n in _imports(ROOT / "meco_core/experiments/compare.py")]
    assert any(n == "meco_core.models.registry" for _, n in _imports(ROOT / "meco_core/models/meco.py"))
    lazy = [n for _, n in _imports(ROOT / "meco_core/cli/commands/compare.py")]
    assert "meco_core.experiments.compare" in lazy and "meco_core.cli.commands.train" in lazy
