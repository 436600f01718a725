#!/usr/bin/env python3
"""Stress the replay launch's shape: perception_node + `meco replay-eval --use-running-node`,
started together, PAIRS at a time in one DDS domain, ROUNDS times. Each replay must exit 0
within 120 s, then its node 0 within 30 s of SIGINT; a process that hangs gets `py-spy dump
--native` (where py-spy is on PATH) into OUT before it is killed. At the end: a count of
hangs and bad exits, and the Fast DDS participant segments left in /dev/shm by these runs.

Why a tool and not a test: the hang it found (README, Reliability: Fast DDS 3.2.2's TCP
teardown) came 2 times in 111 runs, so it needs hundreds of runs (~6 s each).

    .venv/bin/python tools/replay_stress.py --rounds 100 --pairs 3 --out out/replay_stress
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def make_inputs(work: Path) -> tuple[Path, Path]:
    """A 3-frame synthetic bag and a small random-weight golf-class checkpoint: the stress is on
    processes and DDS, not on inference."""
    import torch

    from meco_core import build_model
    from meco_core.classes import GOLF
    from meco_core.cli import main
    from meco_core.models.checkpoint import save_checkpoint

    data, bag, ckpt = work / "drive", work / "bag", work / "tiny.pt"
    if not bag.exists():
        assert main(["data", "synth", "--out", str(data), "--n", "3", "--seed", "3", "--size", "64x96",
                     "--split", "test"]) == 0
        assert main(["data", "make-bag", "--data", str(data), "--out", str(bag), "--storage", "mcap"]) == 0
    if not ckpt.exists():
        torch.manual_seed(0)
        model = build_model("meco", backbone="tf_efficientnet_lite0", channels=16, stem_skip=True, head_upsample=1,
                            num_experts=3, top_k=2).train()
        model(torch.rand(2, 3, 64, 96))
        save_checkpoint(ckpt, model, class_set=GOLF.to_dict(), input_size=[64, 96])
    return bag, ckpt


def dump(pid: int, path: Path) -> None:
    spy = shutil.which("py-spy")
    text = (subprocess.run([spy, "dump", "--native", "--pid", str(pid)], capture_output=True, text=True).stdout
            if spy else "(py-spy not on PATH: no stacks)\n")
    with open(path, "a") as f:
        f.write(text)


def finished(proc: subprocess.Popen, name: str, timeout: float, log: Path) -> str:
    """'' if `proc` exits 0 within `timeout`; else what went wrong (a hung one gets its stacks
    dumped beside `log`, then SIGKILL)."""
    try:
        code = proc.wait(timeout)
        return "" if code == 0 else f"{name} exit {code}"
    except subprocess.TimeoutExpired:
        dump(proc.pid, log.with_suffix(".stacks"))
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return f"{name} hung"


def one_round(r: int, pairs: int, bag: Path, ckpt: Path, env: dict, out: Path) -> list[str]:
    """Start `pairs` node + replay pairs together; returns one problem string per bad pair."""
    started = []
    for k in range(pairs):
        ns, log = f"/stress_{os.getpid()}_{r}_{k}", open(out / f"r{r}_{k}.log", "w")
        node = subprocess.Popen([str(BIN / "perception_node"), "--ros-args", "--params-file",
                                 str(REPO / "config" / "golf_cart.yaml"), "-r", f"__ns:={ns}",
                                 "-p", f"checkpoint:={ckpt}", "-p", "inference_size:=[0,0]"],
                                stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
        replay = subprocess.Popen([str(BIN / "meco"), "replay-eval", "--bag", str(bag), "--image-topic",
                                   "/camera/image_raw", "--seg-gt-topic", "/camera/segmentation", "--depth-gt-topic",
                                   "/camera/depth", "--use-running-node", "--node-namespace", ns, "--timeout", "30",
                                   "--out", str(out / f"report_{k}")],
                                  stdout=log, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True)
        started.append((node, replay, log, out / f"r{r}_{k}.log"))
    t0, problems = time.monotonic(), []
    for node, replay, log, path in started:
        what = [finished(replay, "replay", max(1.0, 120 - (time.monotonic() - t0)), path)]
        node.send_signal(signal.SIGINT)
        what.append(finished(node, "node", 30, path))
        what = [w for w in what if w]
        log.close()
        if what:
            problems.append(f"{path.name}: {', '.join(what)}")
        else:
            path.unlink()
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--pairs", type=int, default=3, help="node + replay pairs started at once, one DDS domain")
    ap.add_argument("--domain", type=int, default=230, help="ROS_DOMAIN_ID of the stress (default: %(default)s)")
    ap.add_argument("--out", type=Path, default=REPO / "out" / "replay_stress")
    args = ap.parse_args()
    from meco_ros.dds_shm import segment_names
    from meco_ros.proc import ros_env

    args.out.mkdir(parents=True, exist_ok=True)
    bag, ckpt = make_inputs(args.out / "inputs")
    env = ros_env(domain_id=args.domain)
    before = set(segment_names())
    problems: list[str] = []
    for r in range(args.rounds):
        problems += one_round(r, args.pairs, bag, ckpt, env, args.out)
        print(f"{time.strftime('%H:%M:%S')} round {r + 1}/{args.rounds}: {(r + 1) * args.pairs} pairs, "
              f"{len(problems)} bad", flush=True)
    time.sleep(1)
    left = sorted(set(segment_names()) - before)
    summary = {"pairs": args.rounds * args.pairs, "bad": problems, "segments_left": left}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"replay_stress: {summary['pairs']} pairs, {len(problems)} bad, {len(left)} Fast DDS segments left "
          f"in /dev/shm; logs of bad pairs (and stacks of hung ones) in {args.out}")
    for p in problems:
        print("  " + p)
    return 0 if not problems and not left else 1


if __name__ == "__main__":
    sys.exit(main())
