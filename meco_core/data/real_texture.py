"""Real ground texture for rendered frames: one class's pixels re-surfaced with patches cut
from real labelled frames, scaled by depth.

Why: the renderer's turf is a procedural green; the only real grass the golf model sees is
YCOR's, on trails. Pasting real grass (its colour statistics, sensor noise, blur and JPEG
artefacts) onto the fairways of rendered golf holes teaches "real grass = fairway" in the
layouts a golf cart meets, with the renders' exact labels and depth (issue 19, "real
appearance: textures and colour statistics taken from the real shared frames").

How: `TextureBank.from_dataset` keeps square windows of a real dataset that lie wholly on
one class. `TextureBank.apply` tiles a patch over the masked pixels at a random size in
metres, scaled by each pixel's depth (one pixel spans d / f metres; isotropic, as grass
blades stand up and do not foreshorten like a flat texture; one scale per band of depth),
mirrored so tiles leave no seams, picks a blurrier copy where one pixel covers many texels (no shimmering far away), and
multiplies the real detail (texel over its blurred self) into a colour mixed from the render's
and the patch's own (lit by the render's shading: mowing stripes, shadows), blended in with a
soft edge.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import cv2
import numpy as np

from meco_core.classes import ClassSet, get_remap
from meco_core.data.format import DatasetReader

LUMA = np.array([0.299, 0.587, 0.114], np.float32)  # RGB -> grey weights (ITU-R BT.601)


@dataclass
class TextureBank:
    """Square RGB patches (N, P, P, 3) uint8, each wholly on one class of a real dataset,
    with blurred copies (`levels[k]`, uint8: Gaussian blur of 2**(k-1) texels) for far ground."""

    patches: np.ndarray
    levels: list[np.ndarray]
    source: str

    @classmethod
    def from_patches(cls, patches: np.ndarray, source: str = "given patches") -> "TextureBank":
        patches = np.ascontiguousarray(patches, np.uint8)
        if patches.ndim != 4 or patches.shape[3] != 3 or patches.shape[1] != patches.shape[2] or not len(patches):
            raise ValueError(f"texture patches must be (N, P, P, 3) with N >= 1; got {patches.shape}")
        levels = [patches]
        size = patches.shape[1]
        k = 1
        while 2 ** k < size // 2:
            sigma = 0.5 * 2 ** k
            levels.append(np.stack([cv2.GaussianBlur(p, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
                                    for p in patches]))
            k += 1
        return cls(patches, levels, source)

    @classmethod
    def from_dataset(cls, root: str | os.PathLike, split: str, class_set: ClassSet, class_id: int,
                     patch: int = 96, stride: int = 32, min_share: float = 0.97,
                     max_patches: int = 300, seed: int = 0) -> "TextureBank":
        """Windows of `patch` px (every `stride` px) of `root`'s `split` whose pixels are at least
        `min_share` class `class_id` (ids of `class_set`, the dataset's labels remapped to it).

        Raises:
            ValueError: the dataset has no remap to `class_set`, or no window qualifies.
        """
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)  # no OpenCV thread pool before a DataLoader forks (its workers would deadlock)
        try:
            return cls._cut(root, split, class_set, class_id, patch, stride, min_share, max_patches, seed)
        finally:
            cv2.setNumThreads(threads)

    @classmethod
    def _cut(cls, root: str | os.PathLike, split: str, class_set: ClassSet, class_id: int, patch: int,
             stride: int, min_share: float, max_patches: int, seed: int) -> "TextureBank":
        reader = DatasetReader(root)
        lut = None if reader.class_set.same_classes(class_set) else get_remap(reader.class_set.name, class_set.name)
        if lut is None and not reader.class_set.same_classes(class_set):
            raise ValueError(f"{root}: no remap from {reader.class_set.name!r} to {class_set.name!r} for textures")
        found: list[np.ndarray] = []
        for name in reader.names(split):
            sample = reader.load(split, name)
            if sample.labels is None:
                continue
            labels = sample.labels if lut is None else lut[sample.labels]
            hit = (labels == class_id).astype(np.float32)
            share = cv2.boxFilter(hit, -1, (patch, patch), normalize=True, borderType=cv2.BORDER_CONSTANT)
            half = patch // 2
            h, w = hit.shape
            for y in range(half, h - patch + half + 1, stride):
                for x in range(half, w - patch + half + 1, stride):
                    window = sample.rgb[y - half:y - half + patch, x - half:x - half + patch]
                    if share[y, x] >= min_share and 20.0 <= float(window.mean()) <= 170.0:  # not black, not blown out
                        found.append(window)
        if not found:
            raise ValueError(f"{root} ({split}): no {patch}x{patch} window is >= {min_share:.0%} "
                             f"class {class_set.names[class_id]!r}")
        rng = np.random.default_rng(seed)
        keep = rng.permutation(len(found))[:max_patches]
        return cls.from_patches(np.stack([found[i] for i in sorted(keep)]), f"{root} ({split})")

    def __len__(self) -> int:
        return len(self.patches)

    def apply(self, rgb: np.ndarray, mask: np.ndarray, depth: np.ndarray, focal: float,
              rng: np.random.Generator, tile_m: tuple[float, float] = (1.5, 4.0),
              shading: tuple[float, float] = (0.75, 1.25), real_colour: tuple[float, float] = (0.3, 1.0),
              contrast: tuple[float, float] = (0.5, 1.6)) -> np.ndarray:
        """`rgb` with the pixels of `mask` that have depth re-surfaced by one random patch.

        Args:
            rgb: (H, W, 3) uint8. mask: (H, W) bool. depth: (H, W) metres (0 = none: kept).
            focal: focal length in pixels of `rgb`. tile_m: side of one tile on the ground, m.
            shading: clip range of the render's brightness relative to its mean in the mask.
            real_colour: range of the share of the real patch's colour (the rest: the render's).
            contrast: clip range of the real detail (a texel's brightness over its blurred one).
        """
        region = mask & (depth > 0)
        if not region.any():
            return rgb
        idx = int(rng.integers(len(self)))
        size = self.patches.shape[1]
        texels_per_m = size / rng.uniform(*tile_m)
        # grass blades stand up, so real grass keeps its texture's aspect in the image at any
        # distance: one pixel spans d / focal metres both ways. Bands of depth (x1.4 apart) are
        # each tiled at their own isotropic scale (a continuous mapping would shear)
        v, u = np.nonzero(region)
        footprint = depth[v, u].astype(np.float32) / focal * texels_per_m  # texels per pixel
        band = np.floor(np.log(np.maximum(footprint, 1e-3)) / np.log(1.4))
        scale = 1.4 ** (band + 0.5)
        tx = u * scale + rng.uniform(0, size)
        ty = v * scale + rng.uniform(0, size)
        level = np.clip(np.floor(np.log2(np.maximum(scale, 1.0))), 0, len(self.levels) - 1).astype(np.int64)
        texel = np.empty((len(v), 3), np.float32)
        ix, iy = _mirror(tx, size), _mirror(ty, size)
        for k in np.unique(level):
            sel = level == k
            texel[sel] = self.levels[k][idx][iy[sel], ix[sel]]
        low = self.levels[-1][idx][iy, ix].astype(np.float32)  # the patch's colour without its detail
        img = rgb.astype(np.float32)
        render = img[v, u]
        luma = render @ LUMA
        # real colour (its low frequencies, lit by the render's shading), mixed into the render's
        # by a random share; times the real detail (texel / its blurred self), so the tiling
        # shows as grass's fine texture, not as a repeated picture
        real = low * np.clip(luma / max(float(luma.mean()), 1.0), *shading)[:, None]
        share = rng.uniform(*real_colour)
        detail = np.clip((texel @ LUMA + 1.0) / (low @ LUMA + 1.0), *contrast)[:, None]
        colours = (render + (real - render) * share) * detail
        new = img.copy()
        new[v, u] = colours
        alpha = cv2.GaussianBlur(region.astype(np.float32), (5, 5), 0)[..., None]
        return np.clip(img + (new - img) * alpha + 0.5, 0, 255).astype(np.uint8)


def _mirror(t: np.ndarray, size: int) -> np.ndarray:
    """Texel index of coordinate `t` on a mirrored repeat of a `size`-texel tile."""
    m = np.floor(t).astype(np.int64) % (2 * size)
    return np.where(m < size, m, 2 * size - 1 - m)
