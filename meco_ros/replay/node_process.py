"""Starting the perception node for a replay: its --ros-args and the process.

One job: the installed `perception_node` with the vehicle's params file plus only the
overrides a replay needs (meco_ros.proc, as node-bench does), started and waited on until
it says 'ready'. The rest of the replay (meco_ros.replay.evaluator) only gets the process.
"""
from __future__ import annotations

import shlex
import signal
from pathlib import Path
from typing import Any

from meco_core.defaults import DEFAULT_CHECKPOINT

from meco_ros.proc import REPO, Process, node_checkpoint, node_ros_args, ros_env, start_node
from .config import ReplayConfig
from .errors import ReplayAbort, say

LOUD = "!" * 100


def shell_line(args: list[str]) -> str:
    """A copy-pastable command line that stays readable (`-p "checkpoint:=''"`, not shlex's quote soup)."""
    out = []
    for a in args:
        if a and all(c.isalnum() or c in "_-+=:,./@%" for c in a):
            out.append(a)
        elif not any(c in a for c in '"$`\\'):
            out.append(f'"{a}"')
        else:
            out.append(shlex.quote(a))
    return " ".join(out)


def node_arguments(cfg: ReplayConfig, namespace: str, compressed: bool) -> tuple[list[str], dict[str, Any]]:
    """--ros-args for perception_node: the vehicle's params file + only the overrides this run needs."""
    params_file = Path(cfg.params_file or REPO / "config" / "golf_cart.yaml").resolve()
    info: dict[str, Any] = {"params_file": str(params_file), "untrained": False}
    try:
        checkpoint = node_checkpoint(cfg.checkpoint, cfg.dev)
    except FileNotFoundError as exc:
        raise ReplayAbort(str(exc)) from None
    if checkpoint is not None:
        info["checkpoint"] = str(checkpoint)
    else:
        if not cfg.dev:
            say(f"{LOUD}\nWARNING: {DEFAULT_CHECKPOINT} does not exist (yet): the perception node runs an UNTRAINED "
                f"random-weight model\n(test/dev mode, meco {cfg.dev_model_config}). Depth and segmentation are "
                f"meaningless; this run only shows the pipeline.\n{LOUD}")
        info.update(checkpoint=f"none: UNTRAINED meco {cfg.dev_model_config} (random weights, test/dev mode)",
                    untrained=True)
    args = node_ros_args(params_file, namespace, checkpoint, cfg.dev_model_config,
                         inference_size=cfg.inference_size,
                         **{"topics.image_compressed": "image/compressed" if compressed else None},
                         device=cfg.device or None, threads=cfg.threads or None, backend=cfg.backend or None,
                         use_sim_time=True if cfg.use_sim_time else None)
    return args, info


def start_perception_node(cfg: ReplayConfig, namespace: str, compressed: bool,
                          run_info: dict[str, Any]) -> Process:
    ros_args, info = node_arguments(cfg, namespace, compressed)
    run_info.update(info)
    node = start_node(ros_args, ros_env(), echo=cfg.verbose)
    run_info["node_command"] = shell_line(node.cmd)
    say(f"replay-eval: started perception_node (namespace {namespace}); waiting up to {cfg.start_timeout:g} s "
        "for 'ready' ...")
    if not node.wait_for("ready", cfg.start_timeout):
        tail = "\n".join(node.lines[-25:])
        node.stop(signal.SIGKILL, 5)
        raise ReplayAbort(f"perception_node did not become ready within {cfg.start_timeout:g} s "
                          f"(exit code {node.popen.returncode}); its last output:\n{tail}")
    return node
