"""The model registry: every model registers itself next to its decoder's definition (as
timm's `@register_model`), and `meco_core.models.build_model(name, **config)` builds it.

    @register_model("mlore")
    @register_model("mlore_reparam", inference_form=True)
    class MLoReDecoder(nn.Module): ...

A registry name is a decoder plus what the name fixes: config keys (`single_depth` is the
plain decoder with `tasks=["depth"]`) and whether the name means the inference form
(`mlore_reparam` is re-parameterised when built). This module imports no model, so a model
module can import it; `meco_core.models` imports every model module, so the registry is
complete whenever `meco_core.models` is importable.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, TypeVar

__all__ = ["ModelEntry", "register_model", "list_models", "model_entry"]

T = TypeVar("T")


@dataclass(frozen=True)
class ModelEntry:
    """One registered model name.

    Attributes:
        name: the registry name (`model.name` in training configs, `meco bench --models`).
        decoder: the decoder class; its `__init__` keywords (past `in_dims`, `tasks`,
            `channels`) are the model's own config keys.
        fixed: config values the name fixes (a build asking for another value is an error).
        inference_form: the name means the inference form: `build_model` calls
            `prepare_for_inference()` on the built model.
    """

    name: str
    decoder: Callable[..., Any]
    fixed: Mapping[str, Any] = field(default_factory=dict)
    inference_form: bool = False


_MODELS: dict[str, ModelEntry] = {}


def register_model(name: str, *, fixed: Mapping[str, Any] | None = None,
                   inference_form: bool = False) -> Callable[[T], T]:
    """Class decorator: register the decorated decoder class under `name`.

    Args:
        name: registry name; registering one name twice is an error.
        fixed: config keys this name fixes, e.g. `{"tasks": ["depth"]}`.
        inference_form: build this name in its inference form (`prepare_for_inference`).

    Returns:
        The decorator, which returns the class unchanged (so decorators stack).
    """
    def decorate(decoder: T) -> T:
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice ({_MODELS[name].decoder.__qualname__} "
                             f"and {getattr(decoder, '__qualname__', decoder)})")
        _MODELS[name] = ModelEntry(name, decoder, dict(fixed or {}), inference_form)
        return decoder
    return decorate


def list_models() -> list[str]:
    """Every registered model name, sorted."""
    return sorted(_MODELS)


def model_entry(name: str) -> ModelEntry:
    """The registry entry of `name`; unknown names are an error that lists the known ones."""
    if name not in _MODELS:
        raise ValueError(f"unknown model {name!r}; available: {', '.join(list_models())}")
    return _MODELS[name]
