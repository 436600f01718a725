"""torch Dataset over one or several meco-dataset/1 roots, with multi-task-safe augmentation.

Every sample yields the same keys whatever the dataset carries, so one batch can mix
CamVid (labels only), RELLIS (sparse lidar + labels) and synthetic data (dense depth):
missing depth is all 0 (= invalid) with `has_depth=False`, missing labels are all 255
with `has_seg=False`; losses mask on those.

Geometric augmentation moves image, depth and labels together:
- scale: image bilinear (area when shrinking), labels and depth nearest (pixel-centre
  aligned, cv2.INTER_NEAREST_EXACT, so both sample the same source pixels) *without
  interpolation* (mixing a foreground and a background lidar return would invent a
  surface in between); when shrinking, lidar points that nearest sampling would skip are
  scattered back (nearest point wins), so sparse depth is not thinned. Depth values are
  kept: resizing is a zoom of the same camera (focal length x s), metric distances do
  not change. (Zooming does change apparent object size at a fixed depth; keep
  `scale_range` narrow when the deployment camera is fixed and depth matters most.)
- crop (random when training, centred otherwise), padded with 0 image / 0 depth /
  255 labels when the image is smaller than the crop;
- horizontal flip; photometric jitter (brightness, contrast, saturation, hue) and, for a
  `camera_look` share of frames, another camera's white balance, tone curve, blur, noise and
  JPEG (`meco_core.data.camera_look`), on the image only.
- camera turn (first, on the stored frame): for a `camera_turn` share of frames, the frame as the
  camera pitched and rolled by up to `camera_turn_deg` would have recorded it (same intrinsics;
  `meco_core.data.camera_turn`: image and labels by homography, depth points rotated in 3D; rays
  that miss the stored frame are black, unlabelled and without depth).
Every item carries `focal`: the vertical focal length fy in pixels of the returned image
(the sample's intrinsics, else the default camera of `meco_core.camera`, times the resize
factor), so a canonical-focal model's output can be turned into metres per sample; zoom
augmentation thereby teaches "same scene, longer lens", not "everything is nearer".
Randomness comes from torch's generator, so `torch.manual_seed` and DataLoader workers
(each seeded by torch) give reproducible, non-repeating augmentation.
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from meco_core.camera import default_intrinsics, fit_size
from meco_core.data.camera_look import LOOK_PARTS, camera_look, check_look_parts
from meco_core.data.camera_turn import camera_rotation, turned_view
from meco_core.classes import ClassSet, get_class_set, get_remap
from meco_core.data.format import DatasetReader, Sample
from meco_core.data.real_texture import LUMA, TextureBank
from meco_core.image_codec import resize_image
from meco_core.defaults import MAX_DEPTH_M
from meco_core.geometry import sparse_depth_image

PathLike = str | os.PathLike


def resize_sparse_depth(depth: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize a (sparse or dense) metric depth map without mixing values; 0 = invalid."""
    h, w = depth.shape
    if (h, w) == (height, width):
        return depth
    out = cv2.resize(depth, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)
    if height < h or width < w:  # shrinking: put back valid points nearest sampling skipped
        ys, xs = np.nonzero(depth > 0)
        if len(ys):
            u = np.minimum(((xs + 0.5) * (width / w)).astype(np.int64), width - 1)
            v = np.minimum(((ys + 0.5) * (height / h)).astype(np.int64), height - 1)
            scattered = sparse_depth_image(u, v, depth[ys, xs], width, height)
            out = np.where(out > 0, out, scattered)
    return out


def _resize_labels(labels: np.ndarray, height: int, width: int) -> np.ndarray:
    if labels.shape == (height, width):
        return labels
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST_EXACT)


def _crop_pad(arr: np.ndarray, top: int, left: int, ch: int, cw: int, fill: float) -> np.ndarray:
    """Window (top, left, ch, cw) of arr; top/left may be negative (pad) when arr is smaller."""
    h, w = arr.shape[:2]
    out = np.full((ch, cw) + arr.shape[2:], fill, arr.dtype)
    y0, x0 = max(top, 0), max(left, 0)
    y1, x1 = min(top + ch, h), min(left + cw, w)
    out[y0 - top : y1 - top, x0 - left : x1 - left] = arr[y0:y1, x0:x1]
    return out




def photometric_jitter(rgb: np.ndarray, rng: np.random.Generator, strength: float = 0.25, hue: float = 0.04) -> np.ndarray:
    """Random brightness, contrast, saturation (factors in 1 +- strength) and hue shift (+- hue turns)."""
    img = rgb.astype(np.float32) / 255.0
    img = img * rng.uniform(1 - strength, 1 + strength)
    gray = img @ LUMA
    img = (img - gray.mean()) * rng.uniform(1 - strength, 1 + strength) + gray.mean()
    gray = img @ LUMA
    img = (img - gray[..., None]) * rng.uniform(1 - strength, 1 + strength) + gray[..., None]
    img = np.clip(img, 0.0, 1.0)
    if hue > 0:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)  # float: H in degrees
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-hue, hue) * 360.0) % 360.0
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    return np.clip(img * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _blend_region(img: np.ndarray, new: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """`new` inside `mask`, `img` outside, with a soft edge so the label's outline leaves no seam."""
    alpha = cv2.GaussianBlur(mask.astype(np.float32), (5, 5), 0)[..., None]
    return np.clip(img + (new - img) * alpha + 0.5, 0, 255).astype(np.uint8)


def relight_region(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                   brightness: tuple[float, float] = (1.3, 2.4), saturation: tuple[float, float] = (0.2, 0.8)) -> np.ndarray:
    """Brighten and desaturate the pixels of `mask`, as sun bleaches asphalt and concrete:
    CamVid's paved ground is overcast, so sunlit paving was never seen as road."""
    img = rgb.astype(np.float32)
    gray = img @ LUMA
    lit = (gray[..., None] + (img - gray[..., None]) * rng.uniform(*saturation)) * rng.uniform(*brightness)
    return _blend_region(img, lit, mask)


def dormant_region(rgb: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                   hue_deg: tuple[float, float] = (28.0, 50.0), saturation: tuple[float, float] = (0.25, 0.65),
                   value: tuple[float, float] = (0.8, 1.25)) -> np.ndarray:
    """Turn the pixels of `mask` straw-coloured (hue set to straw, less saturated), keeping their
    texture (value): dormant turf and dry winter grass. Every real grass frame in training is
    green, so the model learnt grass by its colour and calls dry grass trail."""
    img = rgb.astype(np.float32)
    hsv = cv2.cvtColor(img / 255.0, cv2.COLOR_RGB2HSV)  # float: H in degrees, S and V in [0, 1]
    hsv[..., 0] = rng.uniform(*hue_deg)
    hsv[..., 1] = np.clip(hsv[..., 1] * rng.uniform(*saturation), 0.0, 1.0)
    hsv[..., 2] = np.clip(hsv[..., 2] * rng.uniform(*value), 0.0, 1.0)
    return _blend_region(img, cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB) * 255.0, mask)


REGION_RECOLORS = {"sunlit": relight_region, "dormant": dormant_region}  # kind -> recolour of a class's pixels


class MecoDataset(Dataset):
    """Samples of `split` from one root (or several, concatenated) as training tensors.

    class_set: target classes (default: the first root's). Roots with other classes are
    remapped with `label_remap` if given (applied to every root), else with the
    registry remap `<root classes>-><target>` (e.g. camvid->golf); no remap -> error.
    crop_size (H, W): random crop when augmenting, centre crop/pad otherwise.
    resize (H, W): eval only, resize every sample to this size before any crop.
    keep_aspect: with `resize`, use its pixel count at each frame's own aspect ratio
    (`meco_core.camera.fit_size`, as the Estimator runs frames), not its exact shape.
    resize_targets: with `resize`, resize depth and labels too (False: only the image, so a
    model run at another size is scored against the ground truth as recorded, as the node's
    outputs are; `meco eval` does this).
    max_depth: depth beyond it is set to 0 (invalid), as the metrics ignore it too.
    scale_base (H, W): augmentation scales multiply this size instead of the stored frame's,
    e.g. the network input: the frame is seen at the geometry (aspect squeeze included) a
    camera frame has once the Estimator resized it, then zoomed by `scale_range`.
    squeeze_range (lo, hi): with probability `squeeze_prob`, the width is further scaled by a
    factor drawn log-uniformly from it (< 1: squeezed across), as the Estimator squeezes a wide
    camera's frame into 4:3 (KITTI's 1242x375: 0.4x); depth follows fy, which a squeeze keeps.
    A frame squeezed narrower than the crop is zoomed until it fills it (a longer lens: on YCOR
    that taught off-road ground at long focal lengths, see config/train/meco_golf_v8.yaml).
    recolors: (kind, class id, share of frames) triples: in that share of frames the class's
    pixels are recoloured by REGION_RECOLORS[kind] ("sunlit": brighter, greyer paving;
    "dormant": straw-coloured grass).
    textures: (bank, class id, share of frames) triples: in that share of frames the class's
    pixels with depth are re-surfaced with a real patch from the `TextureBank` (real grass on
    rendered fairways; `meco_core.data.real_texture`).
    """

    def __init__(
        self,
        root: PathLike | Sequence[PathLike],
        split: str,
        crop_size: tuple[int, int] | None = None,
        augment: bool = False,
        scale_range: tuple[float, float] = (0.75, 1.5),
        class_set: ClassSet | str | None = None,
        label_remap: np.ndarray | None = None,
        max_depth: float = MAX_DEPTH_M,
        resize: tuple[int, int] | None = None,
        resize_targets: bool = True,
        flip: bool = True,
        jitter: float = 0.25,
        camera_look: float = 0.0,
        camera_look_parts: Sequence[str] | None = None,
        camera_turn: float = 0.0,
        camera_turn_deg: tuple[float, float] = (5.0, 3.0),
        keep_aspect: bool = False,
        scale_base: tuple[int, int] | None = None,
        squeeze_range: tuple[float, float] | None = None,
        squeeze_prob: float = 0.5,
        recolors: Sequence[tuple[str, int, float]] = (),
        textures: Sequence[tuple[TextureBank, int, float]] = (),
    ) -> None:
        roots = [root] if isinstance(root, (str, os.PathLike)) else list(root)
        if not roots:
            raise ValueError("MecoDataset needs at least one root")
        self.readers = [DatasetReader(r) for r in roots]
        self.split = split
        self.crop_size = tuple(crop_size) if crop_size else None
        self.augment = augment
        self.scale_range = scale_range
        self.max_depth = max_depth
        self.resize = tuple(resize) if resize else None
        self.resize_targets = resize_targets
        self.flip = flip
        self.jitter = jitter
        self.camera_look_share = camera_look  # frames shown as another camera would record them (camera_look)
        self.camera_look_parts = check_look_parts(camera_look_parts) if camera_look_parts is not None else LOOK_PARTS
        if not 0 <= camera_turn <= 1 or len(camera_turn_deg) != 2 or min(camera_turn_deg) < 0:
            raise ValueError(f"camera_turn must be in [0, 1] and camera_turn_deg two angles >= 0 (max |pitch|, max |roll|); "
                             f"got {camera_turn}, {camera_turn_deg}")
        self.camera_turn_share = camera_turn  # frames shown as the camera pitched and rolled would record them
        self.camera_turn_deg = (float(camera_turn_deg[0]), float(camera_turn_deg[1]))
        self.keep_aspect = keep_aspect
        self.scale_base = tuple(scale_base) if scale_base else None
        self.squeeze_range = tuple(squeeze_range) if squeeze_range else None
        self.squeeze_prob = squeeze_prob
        unknown = sorted({kind for kind, _, _ in recolors} - set(REGION_RECOLORS))
        if unknown:
            raise ValueError(f"unknown recolour kind(s) {unknown}; known: {sorted(REGION_RECOLORS)}")
        self.recolors = [(kind, int(cid), float(prob)) for kind, cid, prob in recolors if prob > 0]
        self.textures = [(bank, int(cid), float(prob)) for bank, cid, prob in textures if prob > 0]
        self.class_set = get_class_set(class_set) if class_set is not None else self.readers[0].class_set
        self.remaps: list[np.ndarray | None] = []
        for reader in self.readers:
            lut = None
            if label_remap is not None:
                lut = np.asarray(label_remap, np.uint8).reshape(256)
            elif not reader.class_set.same_classes(self.class_set):
                lut = get_remap(reader.class_set.name, self.class_set.name)
                if lut is None:
                    raise ValueError(
                        f"{reader.root}: classes {reader.class_set.name!r} differ from {self.class_set.name!r} "
                        "and no remap is registered; pass label_remap"
                    )
            self.remaps.append(lut)
        self.items: list[tuple[int, str]] = []
        for i, reader in enumerate(self.readers):
            if split in reader.splits():
                self.items += [(i, n) for n in reader.names(split)]
        if not self.items:
            raise ValueError(f"no samples in split {split!r} of {[str(r.root) for r in self.readers]}")

    def __len__(self) -> int:
        return len(self.items)

    def load_raw(self, index: int) -> Sample:
        """The sample as stored, with labels remapped to the target class set."""
        ri, name = self.items[index]
        sample = self.readers[ri].load(self.split, name)
        if sample.labels is not None and self.remaps[ri] is not None:
            sample.labels = self.remaps[ri][sample.labels]
        return sample

    def __getitem__(self, index: int) -> dict[str, Any]:
        s = self.load_raw(index)
        rgb = s.rgb
        h, w = rgb.shape[:2]
        has_depth, has_seg = s.depth_m is not None, s.labels is not None
        depth = s.depth_m if has_depth else np.zeros((h, w), np.float32)
        labels = s.labels if has_seg else np.full((h, w), 255, np.uint8)
        depth = np.where(depth <= self.max_depth, depth, 0).astype(np.float32)
        rng = np.random.default_rng(int(torch.randint(0, 2**62, (1,)).item())) if self.augment else None
        intrinsics = s.intrinsics or default_intrinsics(h, w)

        if rng is not None and self.camera_turn_share > 0 and rng.random() < self.camera_turn_share:
            pitch, roll = (float(rng.uniform(-a, a)) for a in self.camera_turn_deg)
            rgb, turned_depth, labels = turned_view(rgb, depth if has_depth else None, labels, intrinsics,
                                                    camera_rotation(pitch, 0.0, roll), (h, w))
            depth = turned_depth if has_depth else depth

        if rng is not None:
            scale = rng.uniform(*self.scale_range)
            bh, bw = self.scale_base or (h, w)
            fh, fw = bh * scale, bw * scale
            if self.squeeze_range and rng.random() < self.squeeze_prob:
                fw *= float(np.exp(rng.uniform(*np.log(self.squeeze_range))))
                if self.crop_size and fw < self.crop_size[1]:  # zoom until the squeezed frame fills the crop
                    fh, fw = fh * self.crop_size[1] / fw, float(self.crop_size[1])
            nh, nw = max(1, round(fh)), max(1, round(fw))
        elif self.resize:
            nh, nw = fit_size((h, w), self.resize) if self.keep_aspect else self.resize
        else:
            nh, nw = h, w
        if (nh, nw) != (h, w):
            rgb = resize_image(rgb, nh, nw)
            if rng is not None or self.resize_targets:  # eval may keep the ground truth as recorded
                labels = _resize_labels(labels, nh, nw)
                depth = resize_sparse_depth(depth, nh, nw) if has_depth else np.zeros((nh, nw), np.float32)

        focal = intrinsics[1] * nh / h  # fy of the image the network sees (crop and flip keep it)

        if self.crop_size:
            ch, cw = self.crop_size
            if rng is not None:
                top = int(rng.integers(0, nh - ch + 1)) if nh > ch else -int(rng.integers(0, ch - nh + 1))
                left = int(rng.integers(0, nw - cw + 1)) if nw > cw else -int(rng.integers(0, cw - nw + 1))
            else:
                top, left = (nh - ch) // 2, (nw - cw) // 2
            rgb = _crop_pad(rgb, top, left, ch, cw, 0)
            depth = _crop_pad(depth, top, left, ch, cw, 0.0)
            labels = _crop_pad(labels, top, left, ch, cw, 255)

        if rng is not None:
            if self.flip and rng.random() < 0.5:
                rgb, depth, labels = rgb[:, ::-1], depth[:, ::-1], labels[:, ::-1]
            for kind, class_id, prob in self.recolors:
                if rng.random() < prob:
                    mask = labels == class_id
                    if mask.any():
                        rgb = REGION_RECOLORS[kind](np.ascontiguousarray(rgb), mask, rng)
            for bank, class_id, prob in self.textures:
                if has_depth and rng.random() < prob:
                    rgb = bank.apply(np.ascontiguousarray(rgb), labels == class_id, depth, focal, rng)
            if self.jitter > 0:
                rgb = photometric_jitter(np.ascontiguousarray(rgb), rng, strength=self.jitter)
            if self.camera_look_share > 0 and rng.random() < self.camera_look_share:
                rgb = camera_look(np.ascontiguousarray(rgb), rng, self.camera_look_parts)

        return {
            "image": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))).float().div_(255.0),
            "depth": torch.from_numpy(np.ascontiguousarray(depth, np.float32))[None],
            "seg": torch.from_numpy(np.ascontiguousarray(labels).astype(np.int64)),
            "has_depth": torch.tensor(has_depth),
            "has_seg": torch.tensor(has_seg),
            "focal": torch.tensor(focal, dtype=torch.float32),
            "camera": "given" if s.intrinsics is not None else "default",
            "name": s.name,
        }

