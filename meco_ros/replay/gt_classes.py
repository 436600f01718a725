"""Class sets of a replay: the model's, the bag's labels', and the LUT between them.

One job: decide which class set the bag's label images are in (--gt-classes, the make-bag
metadata, else the model's), which the model's is (its Prediction message, else its
checkpoint), and how label ids map from one to the other as `meco eval` remaps a dataset;
ids that cannot be scored raise ReplayAbort before anything is replayed.
"""
from __future__ import annotations

from typing import Any

from meco_core.classes import CLASS_SETS, GOLF, ClassSet, get_class_set, get_remap
from meco_core.defaults import MAX_DEPTH_M

from meco_ros.proc import node_checkpoint
from .config import ReplayConfig
from .errors import ReplayAbort


def registered(cs: ClassSet) -> ClassSet:
    """The registered class set with the same classes as `cs` (so its remaps apply), else `cs`."""
    return next((known for known in CLASS_SETS.values() if known.same_classes(cs)), cs)


def class_set_from(meta: Any, cfg: ReplayConfig, problems: list[str]) -> tuple[ClassSet, float]:
    """Classes and depth range: the node's Prediction, else the checkpoint, else golf / 80 m."""
    if meta is not None:
        names = list(meta.class_names)
        if names == GOLF.names:
            return GOLF, meta.max_depth
        colors = meta.class_colors if len(meta.class_colors) == len(names) else [(128, 128, 128)] * len(names)
        return registered(ClassSet("node", names, colors)), meta.max_depth
    from meco_ros.package_paths import find_package_checkpoint

    path = find_package_checkpoint(cfg.checkpoint) if cfg.checkpoint else None
    if path is not None:
        from meco_core.models.checkpoint import load_checkpoint
        from meco_core.evaluation.evaluate import class_set_of

        ckpt = load_checkpoint(path)
        cs = registered(class_set_of(ckpt) or GOLF)
        problems.append("no Prediction message from the node: classes and depth range taken from the checkpoint")
        return cs, float(ckpt["model_config"].get("max_depth", MAX_DEPTH_M))
    problems.append("no Prediction message from the node and no --checkpoint: assuming golf classes and 80 m")
    return GOLF, MAX_DEPTH_M


def _known() -> str:
    return ", ".join(sorted(CLASS_SETS))


def gt_class_set(cfg: ReplayConfig, source: Any) -> tuple[ClassSet | None, str]:
    """The class set of the bag's label images and where it came from: --gt-classes, else the
    make-bag metadata, else (None, ...): the model's. Raises ReplayAbort for an unknown name."""
    if cfg.gt_classes:
        if cfg.gt_classes not in CLASS_SETS:
            raise ReplayAbort(f"--gt-classes {cfg.gt_classes!r} is not a known class set; known: {_known()}")
        return CLASS_SETS[cfg.gt_classes], "--gt-classes"
    found = source.label_class_set() if source.topics.seg else None
    if found is None:
        return None, "not recorded in the bag: the model's classes"
    spec, where = found
    try:
        return registered(get_class_set(spec)), where
    except (KeyError, ValueError, TypeError) as exc:
        raise ReplayAbort(f"the bag's {where} gives the labels of {source.topics.seg} a class set that cannot be "
                          f"used ({exc}); pass --gt-classes NAME (known: {_known()})") from None


def label_mapping(gt: ClassSet | None, where: str, model: ClassSet, ids: dict[int, int], topic: str) -> Any:
    """The LUT from the bag's label ids to the model's (None: they are the model's ids), as
    `meco eval` remaps a dataset; ReplayAbort when the ids cannot be scored in the model's classes."""
    def listing(bad: list[int]) -> str:
        return ", ".join(f"{i} (in {ids[i]} message{'s' if ids[i] > 1 else ''})" for i in bad)

    if gt is None:
        bad = sorted(i for i in ids if i >= model.num_classes and i != model.ignore_index)
        if bad:
            raise ReplayAbort(
                f"label ids {listing(bad)} on {topic} are not classes of the model's class set {model.name!r} "
                f"(0..{model.num_classes - 1} = {', '.join(model.names)}; 255 = ignore), and the bag does not say "
                f"which class set its labels are in: pass --gt-classes NAME (known: {_known()}) to have them "
                f"remapped as `meco eval` does. Nothing was scored (reading them as {model.name} ids would give a "
                "wrong mIoU)")
        return None
    lut = None
    if not gt.same_classes(model):
        lut = get_remap(gt.name, model.name)
        if lut is None:
            raise ReplayAbort(f"labels in class set {gt.name!r} ({where}) cannot be scored in the model's classes "
                              f"{model.name!r}: no remap {gt.name}->{model.name} is registered "
                              f"(meco_core.classes.REMAPS); known class sets: {_known()}")
    bad = sorted(i for i in ids if i >= gt.num_classes and i != gt.ignore_index)
    if bad:
        raise ReplayAbort(f"label ids {listing(bad)} on {topic} are not ids of class set {gt.name!r} ({where}: "
                          f"0..{gt.num_classes - 1}, 255 = ignore): the labels are in another class set "
                          f"(--gt-classes NAME; known: {_known()})")
    return lut


def checkpoint_class_set(cfg: ReplayConfig) -> ClassSet | None:
    """The model's classes from its checkpoint when known before the node runs (None: ask the node)."""
    if cfg.use_running_node and not cfg.checkpoint:
        return None
    try:
        path = node_checkpoint(cfg.checkpoint, cfg.dev)
    except FileNotFoundError:
        return None  # said when the node is started
    if path is None:
        return None
    from meco_core.evaluation.evaluate import class_set_of
    from meco_core.models.checkpoint import load_checkpoint

    return registered(class_set_of(load_checkpoint(path)) or GOLF)
