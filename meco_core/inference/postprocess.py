"""Network outputs -> the arrays a node publishes: at the output size, invalid values marked.

Kept apart from the Estimator (which decides sizes and backends) because this is where
per-frame CPU time goes on a small machine: on CPU the resizing runs in OpenCV/numpy
(torch's CPU interpolate of 5x480x640 logits costs ~60 ms against ~1.2 ms here, arg-max
included: `upsampled_argmax`), and non-finite outputs never leave as numbers (depth NaN,
labels 255). On CUDA it stays on the GPU.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F


def channel_argmax(channels: np.ndarray | list[np.ndarray]) -> np.ndarray:
    """argmax over the channels of (C, H, W) float32 (or a list of H x W planes) as uint8, the
    first maximum winning like np.argmax (NaN never wins, as with numpy's `>`).

    OpenCV compare / max / masked copy, one pass per channel: 0.37 ms for 5 x 480 x 640 on one
    core here, against 9.3 ms for numpy boolean-mask updates and 6 ms for np.argmax over a
    channel-last copy (the node runs this on every frame, on the cores inference needs)."""
    planes = [np.ascontiguousarray(c, dtype=np.float32) for c in channels]
    best = planes[0].copy()
    labels, value = np.zeros(best.shape, np.uint8), np.empty(best.shape, np.uint8)
    for i, plane in enumerate(planes[1:], start=1):
        better = cv2.compare(plane, best, cv2.CMP_GT)  # 255 where strictly greater (never NaN)
        cv2.copyTo(plane, better, best)  # not cv2.max: that lets a NaN into `best`
        value.fill(i)
        cv2.copyTo(value, better, labels)
    return labels


def upsampled_argmax(logits: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Labels of (C, h, w) logits bilinearly upsampled to out_h x out_w (half-pixel centres, as
    cv2.INTER_LINEAR): each channel resized by OpenCV, then `channel_argmax`. 1.2 ms for the
    golf model's 5 x 240x320 -> 640x480 on one core (until session 12 it interpolated only near
    boundaries, to save a slow arg-max: 2.5 ms for a typical frame, 10 ms for a cluttered one)."""
    if logits.shape[0] < 2:
        return np.zeros((out_h, out_w), np.uint8)
    return channel_argmax([cv2.resize(np.ascontiguousarray(c), (out_w, out_h), interpolation=cv2.INTER_LINEAR)
                           for c in logits])


def _cpu_array(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """A CPU tensor's float32 numpy view (no copy when it already is float32)."""
    arr = x.detach().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
    return arr.astype(np.float32, copy=False)


def depth_to_output(d: torch.Tensor | np.ndarray, out_h: int, out_w: int, upsample: str = "bilinear"
                    ) -> tuple[np.ndarray, int]:
    """(1, 1, h, w) depth -> (out_h, out_w) float32 metres with NaN where invalid (non-finite or
    <= 0), and the count of non-finite values the network produced.

    On CPU only numpy/OpenCV run: a torch op here would start torch's OpenMP team on the
    node's publish thread, and its spinning threads slow the next frame's inference."""
    if isinstance(d, torch.Tensor) and d.is_cuda:
        d = d.float()
        bad = int((~torch.isfinite(d)).sum())
        if d.shape[-2:] != (out_h, out_w):
            d = F.interpolate(d, (out_h, out_w), mode=upsample,
                              **({"align_corners": False} if upsample == "bilinear" else {}))
        depth = d[0, 0].cpu().numpy()
    else:
        depth = _cpu_array(d)[0, 0]
        bad = int(depth.size - np.count_nonzero(np.isfinite(depth)))
        if depth.shape != (out_h, out_w):
            interp = cv2.INTER_LINEAR if upsample == "bilinear" else cv2.INTER_NEAREST
            depth = cv2.resize(depth, (out_w, out_h), interpolation=interp)
    depth = np.ascontiguousarray(depth, dtype=np.float32)
    invalid = ~(depth > 0)  # NaN compares False, so NaN and <= 0 are both caught
    if bad:  # +inf is > 0: only possible when the network produced non-finite values
        invalid |= np.isinf(depth)
    if invalid.any():
        depth = depth.copy() if not depth.flags.writeable else depth
        depth[invalid] = np.nan
    return depth, bad


def labels_to_output(logits: torch.Tensor | np.ndarray, out_h: int, out_w: int, upsample: str = "bilinear",
                     ignore_index: int = 255) -> tuple[np.ndarray, int]:
    """(1, C, h, w) logits -> (out_h, out_w) uint8 labels: from bilinearly upsampled logits
    ('bilinear') or nearest-upsampled arg-max ('nearest'); pixels with non-finite logits get
    `ignore_index`; also returns how many pixels that was. CPU: numpy/OpenCV only (see
    `depth_to_output`)."""
    if isinstance(logits, torch.Tensor) and logits.is_cuda:
        return _labels_on_gpu(logits.float(), out_h, out_w, upsample, ignore_index)
    lg = _cpu_array(logits)[0]
    finite = None
    if not np.isfinite(lg).all():  # rare: find the pixels, then argmax over zeroed logits
        finite = np.isfinite(lg).all(axis=0)
        lg = np.nan_to_num(lg, nan=0.0, posinf=0.0, neginf=0.0)
    if upsample == "bilinear" and lg.shape[1:] != (out_h, out_w):
        labels = upsampled_argmax(lg, out_h, out_w)
    else:
        labels = channel_argmax(lg)
        if labels.shape != (out_h, out_w):
            labels = cv2.resize(labels, (out_w, out_h), interpolation=cv2.INTER_NEAREST)
    bad = 0
    if finite is not None:
        bad = int(finite.size - np.count_nonzero(finite))
        mask = finite.astype(np.uint8)
        if mask.shape != (out_h, out_w):
            mask = cv2.resize(mask, (out_w, out_h), interpolation=cv2.INTER_NEAREST)
        labels = np.where(mask.astype(bool), labels, np.uint8(ignore_index))
    return np.ascontiguousarray(labels, dtype=np.uint8), bad


def _labels_on_gpu(logits: torch.Tensor, out_h: int, out_w: int, upsample: str,
                   ignore_index: int) -> tuple[np.ndarray, int]:
    """labels_to_output on CUDA: everything stays on the GPU until the uint8 labels."""
    finite = torch.isfinite(logits).all(dim=1)  # (1, h, w)
    bad = int((~finite).sum())
    if bad:
        logits = torch.nan_to_num(logits, nan=0.0, posinf=0.0, neginf=0.0)
    resize_logits = upsample == "bilinear" and logits.shape[-2:] != (out_h, out_w)
    if resize_logits:
        logits = F.interpolate(logits, (out_h, out_w), mode="bilinear", align_corners=False)
    labels_t = logits[0].argmax(0).to(torch.uint8)
    if labels_t.shape != (out_h, out_w):
        labels_t = F.interpolate(labels_t[None, None].float(), (out_h, out_w), mode="nearest")[0, 0].to(torch.uint8)
    if bad:
        mask = F.interpolate(finite[None].float(), (out_h, out_w), mode="nearest")[0, 0] > 0.5
        labels_t = torch.where(mask, labels_t, torch.full_like(labels_t, ignore_index))
    return labels_t.cpu().numpy(), bad
