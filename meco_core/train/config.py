"""Training configuration: typed dataclasses loaded from YAML, with errors that name the key.

A config file has five sections (see config/train/*.yaml for commented examples)::

    model: {name, config: {...registry keys...}, init_from}   (init_from alone: name and config from it)
    data:  {train: [{root, split, weight, labels, depth, scale_range}], val: [{root, split, ...}], crop: [H, W], class_set,
            batch_size, workers, scale_range, flip, jitter, camera_look, camera_look_parts, camera_turn,
            camera_turn_deg, val_max_frames, val_size}
    optim: {lr, weight_decay, backbone_lr_mult, warmup_steps, schedule, steps, grad_clip, ...}
    loss:  {depth_kind, depth, segmentation, vq, balance, class_weights}
    run:   {out_dir, seed, val_every, ckpt_every, log_every, precision, device, ...}

Typos are the most common config bug, so every unknown key is an error naming its full
dotted path and the valid keys; values are type-checked the same way. Relative data roots
and out_dir are relative to the current directory (run `meco train` from the repo root).

`diff_configs` compares two configs for `--resume`: everything that changes the training
trajectory must match; keys in RESUME_FREE (logging cadence, worker count, where files
go, device) may differ because they do not change the weights produced.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from ..defaults import PRECISIONS
from ..errors import MecoError

# Keys allowed to differ between a checkpoint's config and the resuming run's.
RESUME_FREE = frozenset({
    "run.out_dir", "run.log_every", "run.ckpt_every", "run.val_every", "run.device", "run.threads",
    "data.workers",
})


class ConfigError(MecoError, ValueError):
    """A training config is invalid; the message names the offending key."""


@dataclass
class ModelSection:
    name: str = "meco"
    config: dict[str, Any] = field(default_factory=dict)
    init_from: Union[str, None] = None  # fine-tune: start from this checkpoint's weights (same model config)


SCALE_FROM = ("native", "input")  # DataSource.scale_from
# recolour kind (meco_core.data.dataset.REGION_RECOLORS) -> (DataSource key with its share of frames, class)
RECOLOR_KEYS = {"sunlit": ("road_relight", "road"), "dormant": ("dormant_grass", "fairway")}


@dataclass
class DataSource:
    root: str
    split: str = "train"
    weight: float = 1.0  # passes over this source per epoch (0.5 = a random half each epoch)
    labels: bool = True  # false: drop this source's segmentation labels (depth-only source)
    depth: bool = True  # false: drop its depth (labels-only source)
    scale_range: Union[tuple[float, float], None] = None  # per-source override of data.scale_range
    # what scale_range multiplies: "native" (the frame as stored) or "input" (the frame first
    # resized to data.crop, aspect ratio included, as the Estimator resizes a camera frame)
    scale_from: str = "native"
    # wide cameras squeezed into 4:3: width scaled by a factor in squeeze_range (log-uniform),
    # in squeeze_prob of the frames (see MecoDataset)
    squeeze_range: Union[tuple[float, float], None] = None
    squeeze_prob: float = 0.5
    # share of frames whose road pixels are brightened and desaturated (sunlit paving)
    road_relight: float = 0.0
    # share of frames whose fairway pixels turn straw-coloured (dormant turf, dry winter grass)
    dormant_grass: float = 0.0
    # share of frames whose fairway pixels are re-surfaced with real grass cut from the
    # traversable grass of the dataset at real_grass_from (its train split; needs depth)
    real_grass: float = 0.0
    real_grass_from: Union[str, None] = None


@dataclass
class DataSection:
    train: list[DataSource] = field(default_factory=list)
    val: list[DataSource] = field(default_factory=list)
    crop: tuple[int, int] = (240, 320)
    class_set: str = "golf"
    batch_size: int = 8
    workers: int = 2
    scale_range: tuple[float, float] = (0.75, 1.5)
    flip: bool = True
    jitter: float = 0.25
    camera_look: float = 0.0  # share of frames shown as another camera would record them (meco_core.data.camera_look)
    camera_look_parts: Union[list[str], None] = None  # which camera differences (default: all of LOOK_PARTS)
    camera_turn: float = 0.0  # share of frames shown pitched and rolled (meco_core.data.camera_turn)
    camera_turn_deg: tuple[float, float] = (5.0, 3.0)  # max |pitch|, max |roll| in degrees
    val_max_frames: Union[int, None] = None  # evenly spaced subset of the val set, for speed
    val_size: Union[tuple[int, int], None] = None  # resize val images (default: full resolution)


@dataclass
class OptimSection:
    lr: float = 3e-4
    weight_decay: float = 0.05
    backbone_lr_mult: float = 1.0  # pretrained encoders: e.g. 0.1, so ImageNet features are refined, not erased
    freeze_backbone_bn: bool = False  # keep the encoder's BatchNorm statistics (small batches, pretrained)
    warmup_steps: int = 100
    schedule: Literal["cosine", "poly"] = "cosine"
    steps: int = 1000
    grad_clip: float = 1.0  # max global grad norm; 0 = off
    poly_power: float = 0.9
    min_lr_ratio: float = 0.01  # final lr = lr * min_lr_ratio
    betas: tuple[float, float] = (0.9, 0.999)


@dataclass
class LossSection:
    depth_kind: Literal["silog", "l1"] = "silog"
    depth: float = 1.0
    segmentation: float = 1.0
    vq: float = 1.0
    balance: float = 0.01
    class_weights: Union[list[float], None] = None  # cross-entropy weight per class


@dataclass
class RunSection:
    out_dir: str = "runs/default"
    seed: int = 0
    val_every: int = 500  # steps; 0 = only at the end
    ckpt_every: int = 100
    log_every: int = 10
    precision: Literal[PRECISIONS] = "fp32"  # meco_core.defaults.PRECISIONS
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: Union[int, None] = None  # torch CPU threads per process (default: torch's choice)
    max_bad_steps: int = 20  # abort after this many consecutive non-finite steps
    best_metric: Literal["auto", "miou", "abs_rel", "rmse", "d1"] = "auto"


@dataclass
class TrainConfig:
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    loss: LossSection = field(default_factory=LossSection)
    run: RunSection = field(default_factory=RunSection)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, no tuples): what checkpoints store and `diff_configs` compares."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "TrainConfig":
        cfg = _build(cls, data, "")
        validate(cfg)
        return cfg

    def model_config(self) -> dict[str, Any]:
        """Registry config with num_classes filled in from the class set."""
        from meco_core.classes import get_class_set

        cfg = dict(self.model.config)
        cfg.setdefault("num_classes", get_class_set(self.data.class_set).num_classes)
        return cfg


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x


# --------------------------------------------------------------------------- building
def _build(cls: type, data: Any, path: str) -> Any:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path or 'config'}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = ", ".join(_join(path, k) for k in unknown)
        raise ConfigError(f"unknown config key(s) {where}; valid keys{' of ' + path if path else ''}: {sorted(fields)}")
    kwargs = {}
    for name, f in fields.items():
        key = _join(path, name)
        if name in data:
            kwargs[name] = _convert(hints[name], data[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"missing required config key {key}")
    return cls(**kwargs)


def _join(path: str, key: Any) -> str:
    return f"{path}.{key}" if path else str(key)


def _convert(tp: Any, value: Any, key: str) -> Any:
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _build(tp, value, key)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _convert(arg, value, key)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if len(errors) == 1 else f"{key}: {value!r} fits none of {args}")
    if origin is Literal:
        if value not in args:
            raise ConfigError(f"{key}: {value!r} is not one of {list(args)}")
        return value
    if origin is list:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return [_convert(args[0], v, f"{key}[{i}]") for i, v in enumerate(value)]
    if origin is tuple:
        if not isinstance(value, (list, tuple)) or len(value) != len(args):
            raise ConfigError(f"{key}: expected a list of {len(args)} values, got {value!r}")
        return tuple(_convert(a, v, f"{key}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
    if origin is dict or tp is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true/false, got {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise ConfigError(f"{key}: unsupported type {tp}")  # pragma: no cover - a bug in this file


# --------------------------------------------------------------------------- validation
def validate(cfg: TrainConfig) -> None:
    """Range and cross-section checks that types alone cannot express."""
    from meco_core.classes import CLASS_SETS

    def need(ok: bool, key: str, msg: str) -> None:
        if not ok:
            raise ConfigError(f"{key}: {msg}")

    d, o, r = cfg.data, cfg.optim, cfg.run
    need(bool(d.train), "data.train", "needs at least one {root, split} source")
    for section in ("train", "val"):
        for i, src in enumerate(getattr(d, section)):
            key = f"data.{section}[{i}]"
            need(src.weight > 0, f"{key}.weight", f"must be > 0, got {src.weight}")
            need(src.labels or src.depth, key, "labels: false and depth: false leaves nothing to learn")
            sr = src.scale_range
            need(src.scale_from in SCALE_FROM, f"{key}.scale_from", f"must be one of {', '.join(SCALE_FROM)}; "
                 f"got {src.scale_from!r}")
            need(sr is None or 0 < sr[0] <= sr[1], f"{key}.scale_range", f"need 0 < min <= max, got {sr}")
            qr = src.squeeze_range
            need(qr is None or 0 < qr[0] <= qr[1] <= 1, f"{key}.squeeze_range", f"need 0 < min <= max <= 1, got {qr}")
            need(0 <= src.squeeze_prob <= 1, f"{key}.squeeze_prob", f"must be in [0, 1], got {src.squeeze_prob}")
            for share_key, cls in RECOLOR_KEYS.values():
                share = getattr(src, share_key)
                need(0 <= share <= 1, f"{key}.{share_key}", f"must be in [0, 1], got {share}")
                need(share == 0 or d.class_set not in CLASS_SETS or cls in CLASS_SETS[d.class_set].names,
                     f"{key}.{share_key}", f"class set {d.class_set!r} has no {cls} class")
            need(0 <= src.real_grass <= 1, f"{key}.real_grass", f"must be in [0, 1], got {src.real_grass}")
            need(src.real_grass == 0 or bool(src.real_grass_from), f"{key}.real_grass_from",
                 "real_grass > 0 needs the root of a labelled real dataset to cut grass from")
            need(src.real_grass == 0 or d.class_set not in CLASS_SETS or "fairway" in CLASS_SETS[d.class_set].names,
                 f"{key}.real_grass", f"class set {d.class_set!r} has no fairway class")
    need(d.class_set in CLASS_SETS, "data.class_set", f"unknown class set {d.class_set!r}; known: {sorted(CLASS_SETS)}")
    need(all(v > 0 for v in d.crop), "data.crop", f"must be positive [H, W], got {list(d.crop)}")
    need(d.batch_size >= 1, "data.batch_size", "must be >= 1")
    need(d.workers >= 0, "data.workers", "must be >= 0")
    need(0 < d.scale_range[0] <= d.scale_range[1], "data.scale_range", f"need 0 < min <= max, got {list(d.scale_range)}")
    need(0 <= d.camera_look <= 1, "data.camera_look", f"must be in [0, 1], got {d.camera_look}")
    need(0 <= d.camera_turn <= 1, "data.camera_turn", f"must be in [0, 1], got {d.camera_turn}")
    need(len(d.camera_turn_deg) == 2 and min(d.camera_turn_deg) >= 0, "data.camera_turn_deg",
         f"must be [max |pitch|, max |roll|] in degrees, each >= 0; got {list(d.camera_turn_deg)}")
    if d.camera_look_parts is not None:
        from meco_core.data.camera_look import check_look_parts
        try:
            check_look_parts(d.camera_look_parts)
        except ValueError as exc:
            raise ConfigError(f"data.camera_look_parts: {exc}") from None
    need(o.lr > 0, "optim.lr", "must be > 0")
    need(o.steps >= 1, "optim.steps", "must be >= 1")
    need(o.warmup_steps >= 0, "optim.warmup_steps", "must be >= 0 (a --steps smoke run may end inside warm-up)")
    need(o.backbone_lr_mult >= 0, "optim.backbone_lr_mult", "must be >= 0")
    need(o.grad_clip >= 0, "optim.grad_clip", "must be >= 0 (0 = off)")
    need(0 <= o.min_lr_ratio <= 1, "optim.min_lr_ratio", "must be in [0, 1]")
    for key in ("ckpt_every", "log_every"):
        need(getattr(r, key) >= 1, f"run.{key}", "must be >= 1")
    need(r.val_every >= 0, "run.val_every", "must be >= 0")
    need(r.max_bad_steps >= 1, "run.max_bad_steps", "must be >= 1")
    _validate_model(cfg)


def _validate_model(cfg: TrainConfig) -> None:
    from meco_core.classes import get_class_set
    from meco_core.models import list_models, model_config_keys

    name = cfg.model.name
    if name not in list_models():
        raise ConfigError(f"model.name: unknown model {name!r}; available: {list_models()}")
    valid = model_config_keys(name)
    unknown = sorted(set(cfg.model.config) - set(valid))
    if unknown:
        raise ConfigError(f"unknown config key(s) {', '.join('model.config.' + k for k in unknown)}; "
                          f"model {name!r} takes {sorted(valid)}")
    n = get_class_set(cfg.data.class_set).num_classes
    got = cfg.model.config.get("num_classes", n)
    if got != n:
        raise ConfigError(f"model.config.num_classes: {got} but data.class_set {cfg.data.class_set!r} has {n} classes")
    cw = cfg.loss.class_weights
    if cw is not None and len(cw) != n:
        raise ConfigError(f"loss.class_weights: {len(cw)} values for {n} classes of {cfg.data.class_set!r}")


# --------------------------------------------------------------------------- loading / diff
def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """data['a']['b'] = value for key 'a.b' (creating sections as needed); a number indexes a
    list, so 'data.train.0.root' points a config's first training source at another dataset,
    and the index one past the end appends ('data.train.2={root: ...}' to a list of two)."""
    parts = key.split(".")
    node: Any = data
    for depth, p in enumerate(parts):
        last = depth == len(parts) - 1
        if isinstance(node, list):
            if not p.isdigit() or int(p) > len(node) or (int(p) == len(node) and not last):
                raise ConfigError(f"cannot set {key}: {'.'.join(parts[:depth]) or 'config'} is a list of "
                                  f"{len(node)}; use an index 0-{len(node) - 1} (or {len(node)} to append a whole "
                                  f"entry) instead of {p!r}")
            if int(p) == len(node):
                node.append(value)
            elif last:
                node[int(p)] = value
            else:
                node = node[int(p)]
        elif isinstance(node, dict):
            if last:
                node[p] = value
            else:
                node = node.setdefault(p, {})
        else:
            raise ConfigError(f"cannot set {key}: {'.'.join(parts[:depth])} is not a section")


def inherit_model_section(data: dict[str, Any]) -> None:
    """A fine-tune that names only `model.init_from` takes the network's name and config from
    that checkpoint, so a recipe for fine-tuning the shipped model does not restate (and cannot
    drift from) its architecture. A config given beside init_from is kept as written (the
    trainer's strict load then says what differs). The checkpoint's classes must be the data's."""
    model = data.get("model")
    if not isinstance(model, dict) or not model.get("init_from") or model.get("config"):
        return
    from meco_core.classes import get_class_set
    from meco_core.models.checkpoint import CheckpointError, load_checkpoint

    path = str(model["init_from"])
    if not Path(path).is_file():
        raise ConfigError(f"model.init_from: no checkpoint at {path}")
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as exc:
        raise ConfigError(f"model.init_from: {exc}") from None
    if model.get("name", ckpt["model_name"]) != ckpt["model_name"]:
        raise ConfigError(f"model.name is {model['name']!r} but model.init_from {path} holds {ckpt['model_name']!r}")
    data_section = data.get("data") if isinstance(data.get("data"), dict) else {}
    wanted = get_class_set(data_section.get("class_set", DataSection.class_set))
    held = ckpt.get("class_set")
    if held is not None and list(get_class_set(held).names) != list(wanted.names):
        raise ConfigError(f"model.init_from {path} predicts {list(get_class_set(held).names)}, but data.class_set "
                          f"{wanted.name!r} is {list(wanted.names)}")
    model["name"] = ckpt["model_name"]
    model["config"] = dict(ckpt["model_config"])


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read YAML, apply dotted-key overrides (e.g. {'optim.steps': 20}), validate."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    for key, value in (overrides or {}).items():
        set_dotted(data, key, value)
    try:
        inherit_model_section(data)
        return TrainConfig.from_dict(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """{'a': {'b': 1}} -> {'a.b': 1}; lists stay values (data sources compare as a whole)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = _join(prefix, k)
        if isinstance(v, dict) and v:
            out.update(flatten(v, key))
        else:
            out[key] = v
    return out


def with_defaults(saved: dict[str, Any]) -> dict[str, Any]:
    """A stored config with the keys added since it was saved at their defaults: a key that did not
    exist trained at its default (new keys keep the old behaviour), so a run started before an
    upgrade resumes after it. A config this release cannot read is returned as stored."""
    try:
        return _build(TrainConfig, saved, "").to_dict()
    except ConfigError:
        return saved


def diff_configs(saved: dict[str, Any], current: dict[str, Any], ignore: frozenset[str] = RESUME_FREE) -> list[str]:
    """Dotted keys whose values differ (or exist on one side only), except `ignore`d ones."""
    a, b = flatten(_plain(saved)), flatten(_plain(current))
    return sorted(k for k in set(a) | set(b) if k not in ignore and a.get(k, "<absent>") != b.get(k, "<absent>"))
