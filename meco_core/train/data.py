"""Training and validation datasets from the config's data sources.

A source may be used for one task only (`labels: false` / `depth: false`): its other
labels are dropped and flagged absent, so the losses and metrics skip them. That is how
the CamVid config learns depth from synthetic golf frames whose golf labels have no
mapping to CamVid's classes.
"""
from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch.utils.data import ConcatDataset, DataLoader, Dataset

from meco_core.classes import ClassSet
from meco_core.train.config import RECOLOR_KEYS, DataSource, TrainConfig
from meco_core.train.sampler import ResumableBatchSampler, SeededDataset

log = logging.getLogger(__name__)

_ALL_IGNORE = np.full(256, 255, np.uint8)


class DropTasks(Dataset):
    """Removes a task's ground truth from every sample (depth -> 0, labels -> 255, flag False)."""

    def __init__(self, base: Dataset, labels: bool, depth: bool) -> None:
        self.base, self.labels, self.depth = base, labels, depth

    def __len__(self) -> int:
        return len(self.base)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.base[index]
        if not self.labels:
            item["seg"] = torch.full_like(item["seg"], 255)
            item["has_seg"] = torch.tensor(False)
        if not self.depth:
            item["depth"] = torch.zeros_like(item["depth"])
            item["has_depth"] = torch.tensor(False)
        return item


def source_dataset(src: DataSource, cfg: TrainConfig, class_set: ClassSet, max_depth: float, train: bool) -> Dataset:
    from meco_core.data.dataset import MecoDataset

    d = cfg.data
    common: dict[str, Any] = dict(class_set=class_set, max_depth=max_depth,
                                  label_remap=None if src.labels else _ALL_IGNORE)
    if train:
        ds = MecoDataset(src.root, src.split, crop_size=d.crop, augment=True,
                         scale_range=tuple(src.scale_range or d.scale_range), flip=d.flip, jitter=d.jitter,
                         camera_look=d.camera_look, camera_look_parts=d.camera_look_parts,
                         camera_turn=d.camera_turn, camera_turn_deg=tuple(d.camera_turn_deg),
                         scale_base=tuple(d.crop) if src.scale_from == "input" else None,
                         squeeze_range=src.squeeze_range, squeeze_prob=src.squeeze_prob,
                         recolors=[(kind, class_set.names.index(cls), share)
                                   for kind, (share_key, cls) in RECOLOR_KEYS.items() if (share := getattr(src, share_key))],
                         textures=_grass_textures(src, class_set),
                         **common)
    else:
        ds = MecoDataset(src.root, src.split, augment=False, resize=d.val_size, **common)
    return ds if (src.labels and src.depth) else DropTasks(ds, src.labels, src.depth)


def _grass_textures(src: DataSource, class_set: ClassSet) -> list[tuple[Any, int, float]]:
    """The (bank, fairway id, share) triple of a source with `real_grass`, else none."""
    if not src.real_grass:
        return []
    from meco_core.data.real_texture import TextureBank

    fairway = class_set.names.index("fairway")
    bank = TextureBank.from_dataset(src.real_grass_from, "train", class_set, fairway)
    log.info("real grass for %s: %d patches from %s", src.root, len(bank), bank.source)
    return [(bank, fairway, src.real_grass)]


def build_train_loader(cfg: TrainConfig, class_set: ClassSet, max_depth: float, rank: int, world_size: int,
                       start_step: int, pin_memory: bool = False) -> tuple[DataLoader, ResumableBatchSampler]:
    """Loader whose batch at step s depends only on (seed, s); starts at `start_step`."""
    d = cfg.data
    sources = [source_dataset(s, cfg, class_set, max_depth, train=True) for s in d.train]
    sampler = ResumableBatchSampler([len(s) for s in sources], [s.weight for s in d.train], d.batch_size,
                                    cfg.run.seed, rank, world_size, start_step, cfg.optim.steps)
    # own generator: creating the loader must not consume the global RNG (exact resume)
    loader = DataLoader(SeededDataset(ConcatDataset(sources)), batch_sampler=sampler, num_workers=d.workers,
                        pin_memory=pin_memory, generator=torch.Generator().manual_seed(cfg.run.seed),
                        worker_init_fn=_single_threaded if d.workers else None)
    return loader, sampler


def _single_threaded(_worker_id: int) -> None:
    """Loader workers: one OpenCV thread each (torch already uses one); on a 2-core machine
    multi-threaded resizes in 2 workers would steal cores from the training step."""
    import cv2

    cv2.setNumThreads(1)


def build_val_set(cfg: TrainConfig, class_set: ClassSet, max_depth: float) -> Dataset | None:
    if not cfg.data.val:
        return None
    sets = [source_dataset(s, cfg, class_set, max_depth, train=False) for s in cfg.data.val]
    return sets[0] if len(sets) == 1 else ConcatDataset(sets)
