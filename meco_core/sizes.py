"""Image sizes written as text: `parse_size("384x512") -> (384, 512)`, (height, width).

One parser for every `--size`-style option (the `meco` commands, the ROS tools) and any
library caller. Its error is both a `ValueError` (for library callers) and an argparse
`ArgumentTypeError` (so argparse prints the message as it is when used as `type=`).
"""
from __future__ import annotations

import argparse

__all__ = ["SizeError", "parse_size"]


class SizeError(ValueError, argparse.ArgumentTypeError):
    """A size that is not positive HxW text."""


def parse_size(text: str) -> tuple[int, int]:
    """'384x512' -> (384, 512) as (H, W).

    Args:
        text: height and width in pixels separated by 'x' (case-insensitive), e.g. "240x320".

    Raises:
        SizeError: not two integers around an 'x', or not both positive.
    """
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise SizeError(f"size must look like HxW, e.g. 384x512; got {text!r}") from None
    if h <= 0 or w <= 0:
        raise SizeError(f"size must be positive, got {text!r}")
    return h, w
