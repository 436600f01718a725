"""The training loop behind `meco train`.

What makes `--resume` exact (same weights as an uninterrupted run on deterministic CPU):
- batch `s` is a pure function of (seed, s) (`sampler.ResumableBatchSampler`) and each
  sample's augmentation has its own seed, so resuming at step s skips nothing and replays
  nothing;
- the checkpoint holds the whole training state (`checkpointing`: optimiser, schedule,
  GradScaler, step, every rank's RNG states);
- the data loader gets its own torch.Generator so creating it never consumes the global
  RNG.

Non-finite losses skip the optimiser step (all ranks agree), are counted, and abort the
run after `run.max_bad_steps` in a row; the LR schedule still advances with the step.
The optimiser and schedule live in `optim`, one step and its precision and non-finite
policies in `step`, what a checkpoint holds in `checkpointing`.
"""
from __future__ import annotations

import gc
import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from meco_core.models.checkpoint import CheckpointError, load_checkpoint, load_state_strict, save_checkpoint
from meco_core.classes import get_class_set
from meco_core.models.losses import LossWeights, MultiTaskLoss
from meco_core.train import distributed as D
from meco_core.train.checkpointing import (ResumeError, load_for_resume, plain_metrics, remove_interrupted_saves,
                                           restore_optimisation, rng_state, seed_everything, set_rng_state,
                                           resume_entries)
from meco_core.train.config import TrainConfig
from meco_core.train.optim import build_optimizer
from meco_core.train.step import MixedPrecision, OptimisationStep, TrainingAborted  # noqa: F401 - re-exported
from meco_core.train.logs import CsvLog, TensorBoard
from meco_core.train.data import build_train_loader, build_val_set
from meco_core.train.sampler import ResumableBatchSampler

TRAIN_COLUMNS = ["step", "epoch", "lr", "loss", "depth", "segmentation", "vq", "balance", "grad_norm",
                 "sec_per_step", "data_sec", "skipped", "cb_perplexity", "cb_live_fraction", "cb_restarts"]
VAL_KEYS = ["score", "rmse", "rmse_log", "abs_rel", "sq_rel", "d1", "d2", "d3", "miou", "pixel_acc", "fps"]


# --------------------------------------------------------------------------- the run
class Trainer:
    """State of one training run; `run()` executes it. Construct on every rank."""

    def __init__(self, cfg: TrainConfig, resume: bool = False, progress: bool = True) -> None:
        from meco_core.models import build_model

        self.cfg, self.progress = cfg, progress
        self.info = D.init_distributed(cfg.run.device)
        self.out_dir = Path(cfg.run.out_dir)
        self.class_set = get_class_set(cfg.data.class_set)
        seed_everything(cfg.run.seed)  # identical initial weights on every rank
        model = build_model(cfg.model.name, **cfg.model_config()).to(self.info.device)
        model.backbone.freeze_bn_stats = cfg.optim.freeze_backbone_bn
        last = self.out_dir / "last.pt"
        if cfg.model.init_from and not (resume and last.exists()):  # `--resume` before the first save starts here too
            self._init_weights(model, cfg.model.init_from)
        self.raw_model = model
        self.max_depth = float(model.max_depth)
        seed_everything(cfg.run.seed + 1000 * self.info.rank)  # per-rank stream for router noise etc.
        lw = cfg.loss
        weights = torch.tensor(lw.class_weights, dtype=torch.float32) if lw.class_weights else None
        self.criterion = MultiTaskLoss(LossWeights(lw.depth, lw.segmentation, lw.vq, lw.balance, lw.depth_kind),
                                       weights).to(self.info.device)
        self.optimizer, self.scheduler = build_optimizer(model, cfg.optim)
        self.precision = MixedPrecision(cfg.run.precision, self.info.device, self.log)
        self.step, self.best_score = 0, -math.inf
        self.last_val: dict[str, Any] = {}
        counters = (0, 0)  # (non-finite steps in a row, skipped steps): the OptimisationStep keeps them
        if resume and last.exists():
            counters = self._resume(last)
        elif resume:
            self.log(f"--resume: no {last} yet; starting from step 0")
        elif last.exists():
            raise ResumeError(f"{last} exists: pass --resume to continue that run, or choose another --out")
        self.model = D.wrap_model(model, self.info)
        self.optimise = OptimisationStep(self.model, model, self.criterion, self.optimizer, self.scheduler,
                                         self.precision, self.info, cfg.optim.grad_clip, cfg.run.max_bad_steps,
                                         self.log)
        self.optimise.bad_in_row, self.optimise.skipped = counters

    # ------------------------------------------------------------------ setup helpers
    def _init_weights(self, model: torch.nn.Module, path: str) -> None:
        """Fine-tuning start: weights (codebooks included) from another run's checkpoint."""
        ckpt = load_checkpoint(path)
        if ckpt["model_name"] != self.cfg.model.name:
            raise CheckpointError(f"model.init_from {path} holds {ckpt['model_name']!r}, not {self.cfg.model.name!r}")
        load_state_strict(model, ckpt["state_dict"], source=f"model.init_from {path}")
        self.log(f"initialised from {path} (its step {ckpt.get('step', '?')})")

    def _resume(self, path: Path) -> tuple[int, int]:
        """Weights, optimisation state, step, best score and RNG from `path`; returns the
        checkpoint's (non-finite steps in a row, skipped steps)."""
        if self.info.is_main:
            remove_interrupted_saves(path.parent)
        ckpt = load_for_resume(path, self.cfg.to_dict())
        load_state_strict(self.raw_model, ckpt["state_dict"], source=str(path))
        restore_optimisation(ckpt, self.optimizer, self.scheduler, self.precision.scaler)
        self.step = int(ckpt["step"])
        self.best_score = float(ckpt.get("best_score", -math.inf))
        states = ckpt.get("rng_states") or []
        if len(states) != self.info.world_size:
            self.log(f"warning: checkpoint has RNG states of {len(states)} ranks, this run has "
                     f"{self.info.world_size}: model randomness will not match the killed run exactly")
        if states:
            set_rng_state(states[min(self.info.rank, len(states) - 1)])
        self.log(f"resumed from {path} at step {self.step}/{self.cfg.optim.steps}")
        return int(ckpt.get("bad_in_row", 0)), int(ckpt.get("skipped_steps", 0))

    def log(self, msg: str) -> None:
        if self.info.is_main:
            from tqdm import tqdm

            tqdm.write(msg, file=sys.stderr)

    # ------------------------------------------------------------------ checkpoints
    def save(self, name: str, training_state: bool = True) -> None:
        """All ranks call this (RNG states are gathered); rank 0 writes atomically."""
        states = D.gather_objects(rng_state(), self.info) if training_state else None
        if not self.info.is_main:
            return
        extra: dict[str, Any] = {"step": self.step, "train_config": self.cfg.to_dict(),
                                 "val_metrics": plain_metrics(self.last_val), "best_score": self.best_score}
        if self.cfg.data.val_size:  # the size it was validated at: what nodes and `meco eval` run it at
            extra["input_size"] = [int(v) for v in self.cfg.data.val_size]
        if training_state:
            extra.update(resume_entries(self.optimizer, self.scheduler, self.precision.scaler, states,
                                        {"bad_in_row": self.optimise.bad_in_row, "skipped": self.optimise.skipped},
                                        self.info.world_size))
        save_checkpoint(self.out_dir / name, self.raw_model, class_set=self.class_set.to_dict(), **extra)

    # ------------------------------------------------------------------ validation
    def validate(self, val_set) -> None:
        from meco_core.evaluation.evaluate import evaluate, score

        if self.info.is_main and val_set is not None:
            result = evaluate(self.raw_model, val_set, self.info.device, max_frames=self.cfg.data.val_max_frames,
                              class_set=self.class_set)
            self.raw_model.train()
            m = result.metrics
            m["score"] = score(m, self.cfg.run.best_metric)
            self.last_val = m
            self.val_log.write({"step": self.step, **{k: m[k] for k in VAL_KEYS},
                                **{f"iou_{n}": v for n, v in zip(self.class_set.names, m["iou_per_class"])}})
            self.tb.scalars("val", {k: m[k] for k in VAL_KEYS}, self.step)
            self.log(f"val @ {self.step}: score {m['score']:.4f}  mIoU {m['miou']:.2f}  AbsRel {m['abs_rel']:.4f}  "
                     f"RMSE {m['rmse']:.3f}  d1 {m['d1']:.3f}  ({m['frames']} frames, {m['fps']:.1f} FPS)")
            improved = not math.isnan(m["score"]) and m["score"] > self.best_score
        else:
            improved = False
        if D.broadcast_object(improved, self.info):
            if self.info.is_main:
                self.best_score = self.last_val["score"]
            self.save("best.pt", training_state=False)
        D.barrier(self.info)

    # ------------------------------------------------------------------ one step
    def train_step(self, batch: dict[str, Any]) -> dict[str, float]:
        out = self.optimise(batch, self.step + 1)
        self.step += 1
        D.sync_codebooks(self.model, self.info)
        return out

    # ------------------------------------------------------------------ main loop
    def run(self, stop_after: int | None = None) -> dict[str, Any]:
        """Train to optim.steps; Ctrl-C (one process) finishes the step, saves and returns."""
        with StopRequest(enabled=self.info.world_size == 1) as stop:
            return self._run(stop, stop_after)

    def _run(self, stop: StopRequest, stop_after: int | None) -> dict[str, Any]:
        """Train to optim.steps. `stop_after` ends the process's work after that many steps
        *without* a final checkpoint, as a kill would (used by tests)."""
        from tqdm import tqdm

        cfg, info = self.cfg, self.info
        loader, sampler = build_train_loader(cfg, self.class_set, self.max_depth, info.rank, info.world_size,
                                             self.step, pin_memory=info.device.type == "cuda")
        val_set = build_val_set(cfg, self.class_set, self.max_depth) if info.is_main else None
        resumed = self.step if self.step > 0 else None
        if info.is_main:
            self._open_logs(sampler, resumed)
        bar = tqdm(total=cfg.optim.steps, initial=self.step, disable=not (info.is_main and self.progress),
                   dynamic_ncols=True, unit="step", file=sys.stderr)
        self.raw_model.train()
        decoder = getattr(self.raw_model, "decoder", None)
        times: list[float] = []
        done_here = 0
        t_data = time.perf_counter()
        try:
            for batch in loader:
                t0 = time.perf_counter()
                out = self.train_step(batch)
                t1 = time.perf_counter()
                times.append(t1 - t_data)  # wall time of the step, data wait included
                done_here += 1
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in out.items() if k in ("loss", "depth", "segmentation", "vq")})
                if self.step % cfg.run.log_every == 0 or self.step == cfg.optim.steps:
                    self._log_train(out, sampler, t1 - t0, t0 - t_data, decoder)
                # validate before saving: last.pt then carries this step's best score
                if cfg.run.val_every and self.step % cfg.run.val_every == 0 and self.step < cfg.optim.steps:
                    self.validate(val_set)
                if self.step % cfg.run.ckpt_every == 0 and self.step < cfg.optim.steps:
                    self.save("last.pt")
                if stop_after is not None and done_here >= stop_after:
                    return {"step": self.step, "stopped": True}
                if stop.requested and self.step < cfg.optim.steps:
                    self.save("last.pt")
                    self.log(f"interrupted at step {self.step}/{cfg.optim.steps}: saved {self.out_dir / 'last.pt'}; "
                             "continue with --resume")
                    return {"step": self.step, "interrupted": True, "out_dir": str(self.out_dir), "rank": info.rank}
                t_data = time.perf_counter()
            self.validate(val_set)
            self.save("last.pt")
            digests = self.check_ranks_agree()
        finally:
            bar.close()
            if info.is_main and hasattr(self, "tb"):
                self.tb.close()
        steady = times[2:] or times
        summary = {"step": self.step, "out_dir": str(self.out_dir), "best_score": self.best_score,
                   "skipped_steps": self.optimise.skipped, "sec_per_step": float(np.mean(steady)) if steady else math.nan,
                   "val": plain_metrics(self.last_val), "world_size": info.world_size, "rank": info.rank,
                   "rank_digests": digests}
        self.log(f"done: step {self.step}, {summary['sec_per_step']:.2f} s/step, best score {self.best_score:.4f}, "
                 f"skipped {self.optimise.skipped}; checkpoints in {self.out_dir}")
        return summary

    def _open_logs(self, sampler: ResumableBatchSampler, resumed: int | None) -> None:
        """Rank 0: config.yaml, train/val CSVs and TensorBoard (continued on resume), and the
        run's opening lines (what trains, on what, from which weights)."""
        cfg = self.cfg
        self.out_dir.mkdir(parents=True, exist_ok=True)
        (self.out_dir / "config.yaml").write_text(_yaml(cfg.to_dict()))
        val_cols = ["step", *VAL_KEYS, *(f"iou_{n}" for n in self.class_set.names)]
        self.train_log = CsvLog(self.out_dir / "train.csv", TRAIN_COLUMNS, resumed)
        self.val_log = CsvLog(self.out_dir / "val.csv", val_cols, resumed)
        self.tb = TensorBoard(self.out_dir / "tb", purge_step=(resumed + 1) if resumed else None)
        self.log(f"training {cfg.model.name} on {self.info.device} x{self.info.world_size}: {sampler.epoch_len} "
                 f"samples/epoch, {sampler.batches_per_epoch} steps/epoch, steps {self.step}->{cfg.optim.steps}, "
                 f"out {self.out_dir}")
        mc = self.raw_model.config
        source = (mc.get("backbone_weights") or "RANDOM init (no backbone_weights)") if not cfg.model.init_from \
            else f"from {cfg.model.init_from}"
        self.log(f"backbone {mc.get('backbone')}{' over ' + mc['hybrid_stem'] if mc.get('hybrid_stem') else ''}: "
                 f"weights {source}, input mean {mc.get('input_mean')} std {mc.get('input_std')}"
                 f"{', grey-world white balance ' + str(mc['white_balance']) if mc.get('white_balance') else ''}")

    def check_ranks_agree(self) -> list[str]:
        """Digest of the weights on every rank; a mismatch means DDP replicas diverged."""
        D.sync_buffers(self.model, self.info)
        digests = D.gather_objects(D.state_digest(self.raw_model), self.info)
        if len(set(digests)) > 1:
            self.log(f"WARNING: model replicas differ across ranks: {digests}")
        return digests

    def _log_train(self, out: dict[str, float], sampler: ResumableBatchSampler, step_s: float, data_s: float,
                   decoder) -> None:
        keys = ("loss", "depth", "segmentation", "vq", "balance", "grad_norm")  # same keys on every rank
        values = D.all_reduce_mean({k: float(out.get(k, math.nan)) for k in keys}, self.info)
        cb = decoder.codebook_stats() if decoder is not None and hasattr(decoder, "codebook_stats") else {}
        if not self.info.is_main:
            return
        row = {"step": self.step, "epoch": (self.step - 1) // sampler.batches_per_epoch,
               "lr": self.optimizer.param_groups[0]["lr"], "sec_per_step": step_s, "data_sec": data_s,
               "skipped": self.optimise.skipped, **values,
               **{f"cb_{k}": v for k, v in cb.items()}}
        self.train_log.write(row)
        self.tb.scalars("train", {k: v for k, v in row.items() if k not in ("step", "epoch") and not k.startswith("cb_")},
                        self.step)
        if cb:
            self.tb.scalars("codebook", cb, self.step)


class StopRequest:
    """Ctrl-C while training: the first SIGINT asks the loop to stop after the step in
    progress (last.pt then holds that step exactly, optimiser and RNG included, so --resume
    continues as if never stopped); a second one interrupts at once, as Python would.

    Why not just KeyboardInterrupt: it lands anywhere, e.g. inside the optimiser update, and
    everything since the last periodic checkpoint (up to ckpt_every steps) was lost. Only in
    a single process on the main thread: ranks of a torchrun job would stop at different
    steps, and a checkpoint needs them all (there a kill resumes from the last checkpoint)."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        sys.stderr.write("\nCtrl-C: stopping after this step and saving last.pt (Ctrl-C again to abort now)\n")

    def __enter__(self) -> "StopRequest":
        if self.enabled:
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            signal.signal(signal.SIGINT, self._previous)


def _yaml(d: dict[str, Any]) -> str:
    import yaml

    return yaml.safe_dump(d, sort_keys=False, default_flow_style=None)


def train(cfg: TrainConfig, resume: bool = False, progress: bool = True, stop_after: int | None = None) -> dict[str, Any]:
    """Run (or resume) training for `cfg`; joins the torchrun group when launched by torchrun."""
    threads = torch.get_num_threads()
    finished = False
    trainer = None
    try:
        if cfg.run.threads:  # process-wide state: set here, at the entry point, never by the Trainer object
            torch.set_num_threads(cfg.run.threads)
        trainer = Trainer(cfg, resume=resume, progress=progress)
        result = trainer.run(stop_after=stop_after)
        finished = True
        return result
    finally:
        torch.set_num_threads(threads)  # run.threads must not leak into the caller's process
        if stop_after is None:
            # DDP's reducer holds the process group: drop it first, so that destroying the group
            # ends gloo's threads now. Left to interpreter exit, one rank's gloo thread could see
            # its peer gone and abort ('terminate called without an active exception', CI).
            trainer = None
            gc.collect()
            D.cleanup(wait_for_peers=finished)
