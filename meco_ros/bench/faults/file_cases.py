"""Fault cases of model and dataset files (issue 20): bad model files at start, a disk that fills.

Bad model files (a truncated checkpoint, a foreign state dict, a text file named .pt, a
truncated and a foreign .onnx) go to the three ways a model is opened: `meco eval`, the
Estimator (the Python API) and `perception_node` with `checkpoint:=`. Each must give one
clear error naming the file and what is wrong (no traceback) and a non-zero exit.

A full disk is a small tmpfs mounted for the case (root only), else a file-size limit
(RLIMIT_FSIZE, SIGXFSZ ignored so the write fails with EFBIG instead of killing the
program). A good file is written first, then the overwrite that runs out of space: it must
fail with a clear error and leave the previous file loadable with its hash unchanged.
"""
from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from meco_ros.proc import REPO, node_command, ros_env

from .base import FaultContext, fault_case
from .replay_cases import make_dataset, run_meco

NODE_EXIT_S = 120.0  # a node that cannot load its model must exit, not wait unconfigured


# ---------------------------------------------------------------- model files
def tiny_checkpoint(path: Path, seed: int = 0) -> Path:
    """A small golf-class checkpoint (EfficientNet-Lite0, 16 channels), as `meco train` writes them."""
    if path.is_file():
        return path
    import torch

    from meco_core.classes import GOLF
    from meco_core.models import build_model
    from meco_core.models.checkpoint import save_checkpoint

    torch.manual_seed(seed)
    model = build_model("meco", backbone="tf_efficientnet_lite0", channels=16, stem_skip=True, head_upsample=1,
                        num_experts=3, top_k=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(path, model, class_set=GOLF.to_dict(), input_size=[64, 96])
    return path


def truncated_copy(src: Path, dst: Path) -> Path:
    """The first half of `src`: a copy cut short (an interrupted download or transfer)."""
    data = src.read_bytes()
    dst.write_bytes(data[: len(data) // 2])
    return dst


def files_dir(ctx: FaultContext) -> Path:
    d = ctx.work_dir / "model_files"
    d.mkdir(parents=True, exist_ok=True)
    return d


def good_source(ctx: FaultContext) -> Path:
    """ctx.checkpoint, else a tiny checkpoint made here."""
    return Path(ctx.checkpoint) if ctx.checkpoint else tiny_checkpoint(files_dir(ctx) / "good.pt")


def good_onnx(ctx: FaultContext) -> Path:
    """A real export by `meco export --format onnx` (of the tiny checkpoint: the file is what matters)."""
    out = files_dir(ctx) / "good.onnx"
    if not out.is_file():
        src = tiny_checkpoint(files_dir(ctx) / "good.pt")
        r = run_meco(["export", "--checkpoint", str(src), "--out", str(out), "--format", "onnx", "--size", "64x96"])
        if r.returncode != 0:
            raise RuntimeError(f"meco export --format onnx failed ({r.returncode}): {r.stdout[-1500:]}")
    return out


def foreign_state_dict(path: Path) -> Path:
    """A plain torch state dict of another model (another program's .pt)."""
    import torch

    torch.save(torch.nn.Conv2d(3, 8, 3).state_dict(), path)
    return path


def foreign_onnx(path: Path) -> Path:
    """A valid ONNX model of another program (no meco metadata, another graph)."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "foreign", [x], [y])
    onnx.save(helper.make_model(graph), str(path))
    return path


# ---------------------------------------------------------------- the three consumers
def clear_error(output: str, code: int | None, path: Path, reasons: Sequence[str]) -> tuple[bool, str]:
    """(one clear error?, what was seen): exit > 0 (not a signal, not a hang), no traceback, and a
    line naming the file that says what is wrong (one of `reasons`)."""
    naming = [ln.strip() for ln in output.splitlines() if path.name in ln]
    hit = next((ln for ln in naming if any(r in ln.lower() for r in reasons)), None)
    traceback = "Traceback" in output
    ok = code is not None and code > 0 and not traceback and hit is not None
    seen = hit or (naming[-1] if naming else (output.strip().splitlines() or ["(no output)"])[-1])
    return ok, f"exit {code}{', traceback' if traceback else ''}: {seen[:260]!r}"


def via_eval(ctx: FaultContext, path: Path, reasons: Sequence[str]) -> tuple[bool, str]:
    """`meco eval --checkpoint PATH` on a tiny dataset (ONNX files with --backend onnxruntime)."""
    data = make_dataset(ctx.work_dir / "eval_data", 2, "64x96")
    backend = ["--backend", "onnxruntime"] if path.suffix == ".onnx" else []
    try:
        r = run_meco(["eval", "--checkpoint", str(path), *backend, "--data", str(data), "--split", "test",
                      "--no-progress", "--threads", "1"], timeout=180)
    except subprocess.TimeoutExpired:
        return False, "meco eval still running after 180 s"
    return clear_error(r.stdout, r.returncode, path, reasons)


def via_estimator(path: Path, reasons: Sequence[str]) -> tuple[bool, str]:
    """The Python API: Estimator(PATH) must raise an error that names the file and what is wrong."""
    from meco_core.errors import MecoError
    from meco_core.inference.estimator import Estimator

    backend = "onnxruntime" if path.suffix == ".onnx" else "torch"
    try:
        Estimator(str(path), backend=backend, threads=1)
    except (MecoError, ValueError, FileNotFoundError) as exc:
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        ok = path.name in text and any(r in text.lower() for r in reasons)
        return ok, f"{type(exc).__name__}: {text[:260]!r}"
    except Exception as exc:  # noqa: BLE001 - an unexpected kind of error is the finding
        return False, f"unexpected {type(exc).__name__}: {str(exc)[:200]!r}"
    return False, "Estimator accepted the file"


def via_node(ctx: FaultContext, path: Path, reasons: Sequence[str]) -> tuple[bool, str]:
    """perception_node with the vehicle's params file and `checkpoint:=PATH`: must exit, saying why."""
    cmd = [*node_command(), "--ros-args", "--params-file", str(REPO / "config" / "golf_cart.yaml"),
           "-r", f"__ns:=/meco_fault_file_{os.getpid()}", "-p", f"checkpoint:={path}", "-p", "threads:=1"]
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                           env=ros_env(ctx.domain_id, OMP_NUM_THREADS="1"), timeout=NODE_EXIT_S)
    except subprocess.TimeoutExpired:
        return False, f"perception_node still running {NODE_EXIT_S:g} s after start"
    return clear_error(r.stdout, r.returncode, path, reasons)


def bad_model_file(ctx: FaultContext, path: Path, reasons: Sequence[str]) -> tuple[bool, str, dict[str, Any]]:
    """The three consumers of one bad file; the case passes when all three give a clear error."""
    results = {"meco eval": via_eval(ctx, path, reasons), "Estimator": via_estimator(path, reasons),
               "perception_node": via_node(ctx, path, reasons)}
    passed = all(ok for ok, _ in results.values())
    measured = "; ".join(f"{who}: {'ok' if ok else 'FAIL'} {seen}" for who, (ok, seen) in results.items())
    return passed, measured, {who: {"ok": ok, "seen": seen} for who, (ok, seen) in results.items()}


CLEAR = "one clear error naming the file and what is wrong, no traceback, non-zero exit (meco eval, Estimator, " \
        "perception_node checkpoint:=)"


def _not_torch(ctx: FaultContext) -> Path:
    path = files_dir(ctx) / "notes.pt"
    path.write_text("model: meco golf v3\nweights: see the shared drive\n")
    return path


# (case, what the file is, how it is made, words the one error line must hold, fast: in make test;
# the others run in `meco node-faults`, keeping make test under 10 minutes)
BAD_MODEL_FILES: tuple[tuple[str, str, Callable[[FaultContext], Path], tuple[str, ...], bool], ...] = (
    ("checkpoint_truncated", "a checkpoint cut to half its size",
     lambda ctx: truncated_copy(good_source(ctx), files_dir(ctx) / "truncated.pt"), ("truncated", "corrupt"), True),
    ("checkpoint_foreign", "another program's .pt (a plain Conv2d state dict)",
     lambda ctx: foreign_state_dict(files_dir(ctx) / "foreign_state_dict.pt"), ("not a meco-checkpoint",), False),
    ("checkpoint_not_torch", "a text file renamed .pt", _not_torch, ("not a pytorch checkpoint",), False),
    ("onnx_truncated", "a `meco export` .onnx cut to half its size",
     lambda ctx: truncated_copy(good_onnx(ctx), files_dir(ctx) / "truncated.onnx"), ("truncated", "corrupt"), False),
    ("onnx_foreign", "another program's valid .onnx (no meco metadata, another graph)",
     lambda ctx: foreign_onnx(files_dir(ctx) / "foreign.onnx"), ("no meco metadata",), False),
)


def _register_bad_model_file(name: str, what: str, make: Callable[[FaultContext], Path], words: tuple[str, ...],
                             fast: bool) -> None:
    fault_case(name, f"{what}: {CLEAR}", fast=fast)(lambda ctx: bad_model_file(ctx, make(ctx), words))


for _case in BAD_MODEL_FILES:
    _register_bad_model_file(*_case)


# ---------------------------------------------------------------- a disk that fills
class SmallDisk:
    """A directory that runs out of space: a tmpfs of `size` bytes mounted on it (root), else a
    file-size limit for the programs started with `preexec()` (EFBIG instead of ENOSPC)."""

    use_tmpfs = True  # False: always the file-size limit (to check that path where mount works)

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        mounted = self.use_tmpfs and subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
            capture_output=True, text=True).returncode == 0
        self.kind = "tmpfs" if mounted else "RLIMIT_FSIZE"
        self.limit: int | None = None

    def __enter__(self) -> "SmallDisk":
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.kind == "tmpfs":
            if subprocess.run(["umount", str(self.path)], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", str(self.path)], capture_output=True)

    def leave_free(self, nbytes: int, file_limit: int | None = None) -> None:
        """Fill the disk but `nbytes` (tmpfs); or limit every file to `file_limit` (default
        `nbytes`) bytes (RLIMIT_FSIZE)."""
        if self.kind != "tmpfs":
            self.limit = file_limit or nbytes
            return
        st = os.statvfs(self.path)
        fill = st.f_bavail * st.f_frsize - nbytes
        block = b"\0" * (1 << 20)
        with open(self.path / ".filler", "wb") as f:
            try:
                while fill > 0:
                    fill -= f.write(block[: min(len(block), fill)])
            except OSError:
                pass  # already full

    def preexec(self) -> Callable[[], None] | None:
        limit = self.limit
        if limit is None:
            return None

        def limit_file_size() -> None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG for the write, not a killed program
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

        return limit_file_size


def hashes(root: Path) -> dict[str, str]:
    """sha256 of every file under root (temporaries and the filler left out)."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.name.startswith(".")}


def leftovers(root: Path) -> list[str]:
    """Temporary files a failed write left behind."""
    return sorted(str(p.relative_to(root)) for p in root.rglob(".*.tmp"))


def disk_error(output: str, code: int | None, under: Path) -> tuple[bool, str]:
    """One clear error: exit > 0, no traceback, a line naming a file under `under` and the OS's reason."""
    reasons = ("no space left", "file too large")
    hit = next((ln.strip() for ln in output.splitlines()
                if str(under) in ln and any(r in ln.lower() for r in reasons)), None)
    traceback = "Traceback" in output
    seen = hit or (output.strip().splitlines() or ["(no output)"])[-1]
    return (code is not None and code > 0 and not traceback and hit is not None), \
        f"exit {code}{', traceback' if traceback else ''}: {seen.strip()[:260]!r}"


def complete_png(path: Path) -> bool:
    data = path.read_bytes()
    return data.startswith(b"\x89PNG") and data.rstrip(b"\0").endswith(b"IEND\xaeB`\x82")


def dataset_state(root: Path, before: dict[str, str]) -> tuple[bool, str, dict[str, Any]]:
    """After a failed overwrite: every sample whole (all its files old, or all new and complete),
    none missing, all readable by DatasetReader, no temporaries."""
    from meco_core.data.format import DatasetReader

    after = hashes(root)
    samples: dict[str, set[str]] = {}
    broken = []
    for rel, digest in before.items():
        if rel not in after:
            broken.append(f"{rel} missing")
            continue
        changed = after[rel] != digest
        if changed and rel.endswith(".png") and not complete_png(root / rel):
            broken.append(f"{rel} truncated")
        parts = Path(rel).parts
        if len(parts) == 3 and parts[1] in ("image", "depth", "seg"):
            samples.setdefault(f"{parts[0]}/{Path(parts[2]).stem}", set()).add("new" if changed else "old")
    mixed = sorted(name for name, kinds in samples.items() if len(kinds) > 1)
    unreadable = []
    try:
        reader = DatasetReader(root)
        for split in reader.splits():
            for name in reader.names(split):
                try:
                    reader.load(split, name)
                except Exception as exc:  # noqa: BLE001 - any failure to read is the finding
                    unreadable.append(f"{split}/{name}: {exc}")
    except Exception as exc:  # noqa: BLE001
        unreadable.append(f"dataset: {exc}")
    temps = leftovers(root)
    replaced = sum(1 for kinds in samples.values() if kinds == {"new"})
    ok = not broken and not mixed and not unreadable and not temps
    text = (f"{len(samples) - replaced - len(mixed)} samples unchanged, {replaced} replaced whole, "
            f"{len(mixed)} mixed old/new{f' {mixed[:3]}' if mixed else ''}, broken files {broken[:3] or 'none'}, "
            f"unreadable {unreadable[:2] or 'none'}, temporaries left {temps[:3] or 'none'}")
    return ok, text, {"mixed": mixed, "broken": broken, "unreadable": unreadable, "temporaries": temps}


@fault_case("dataset_disk_full",
            "`meco data synth` over an existing dataset on a disk that fills: a clear error naming the file, "
            "non-zero exit, every previous sample whole (its files unchanged or all replaced), the dataset loads",
            fast=True)
def dataset_disk_full(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    with SmallDisk(ctx.work_dir / "small_disk_data", 1 << 20) as disk:
        root = disk.path / "ds"
        first = run_meco(["data", "synth", "--out", str(root), "--n", "6", "--size", "96x128", "--seed", "1",
                          "--split", "test"])
        if first.returncode != 0:
            return False, f"the first (good) synth failed: {first.stdout[-400:]}", {"disk": disk.kind}
        before = hashes(root)
        # room for one image and a little: the disk fills inside the first sample rewritten
        # (tmpfs); the limit stops every image (RLIMIT_FSIZE limits each file, not the disk)
        image = (root / "test" / "image" / "000000.png").stat().st_size
        disk.leave_free(image + (8 << 10), file_limit=image // 2)
        t0 = time.monotonic()
        r = run_meco(["data", "synth", "--out", str(root), "--n", "40", "--size", "96x128", "--seed", "2",
                      "--split", "test"], preexec_fn=disk.preexec())
        took = time.monotonic() - t0
        error_ok, error_seen = disk_error(r.stdout, r.returncode, disk.path)
        state_ok, state_text, details = dataset_state(root, before)
        details.update(disk=disk.kind, exit_code=r.returncode, seconds=round(took, 1))
        measured = f"{disk.kind}: {error_seen}; {state_text}"
        return error_ok and state_ok, measured, details


@fault_case("checkpoint_disk_full",
            "`meco export` over an existing checkpoint on a disk that fills: a clear error naming the file, "
            "non-zero exit, the previous checkpoint loads with its hash unchanged, no temporary left", fast=True)
def checkpoint_disk_full(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    from meco_core.models.checkpoint import load_checkpoint

    src_a = tiny_checkpoint(files_dir(ctx) / "good.pt", seed=0)
    src_b = tiny_checkpoint(files_dir(ctx) / "other.pt", seed=1)
    with SmallDisk(ctx.work_dir / "small_disk_ckpt", 16 << 20) as disk:
        out = disk.path / "model.pt"
        first = run_meco(["export", "--checkpoint", str(src_a), "--out", str(out)])
        if first.returncode != 0:
            return False, f"the first (good) export failed: {first.stdout[-400:]}", {"disk": disk.kind}
        digest = hashlib.sha256(out.read_bytes()).hexdigest()
        disk.leave_free(1 << 20)  # the new file is ~6 MB: the write runs out part-way
        r = run_meco(["export", "--checkpoint", str(src_b), "--out", str(out)], preexec_fn=disk.preexec())
        error_ok, error_seen = disk_error(r.stdout, r.returncode, out)
        same = out.is_file() and hashlib.sha256(out.read_bytes()).hexdigest() == digest
        try:
            load_checkpoint(out)
            loads = "loads"
        except Exception as exc:  # noqa: BLE001 - the finding
            loads = f"does not load: {exc}"
        temps = leftovers(disk.path)
        measured = (f"{disk.kind}: {error_seen}; previous checkpoint {'unchanged' if same else 'CHANGED'} and "
                    f"{loads}; temporaries left {temps or 'none'}")
        details = {"disk": disk.kind, "exit_code": r.returncode, "hash_unchanged": same, "loads": loads,
                   "temporaries": temps}
        return error_ok and same and loads == "loads" and not temps, measured, details
