"""Other mountings and lenses on real frames: each frame as a camera pitched, rolled, yawed or zoomed on the same spot.

Why: every real frame with lidar here comes from a camera mounted level on its vehicle (KITTI's,
RELLIS's), and the golf model's real training frames got their pseudo-depth from one assumed
horizon per dataset, while a cart's camera may be pitched down a few degrees and the hidden sets'
cameras are mounted as their vehicles have them. A camera turned about its own centre sees the
same rays, so the turned view is exact (`meco_core.data.camera_turn`: a homography for the pixels,
no parallax whatever the depth; the lidar points rotated into the new camera for the depth).
Each group of views (pitch 2.5 and 5 degrees, roll, yaw) is cut at one size for all its angles, the
largest that every angle of the group fills from the source image, so a group's level view differs
from its turned ones by the turn alone (a larger turn needs a smaller cut: a longer focal length at
the network input, which the zoom group measures on its own). The zoom group is a longer lens at the same aspect: centred crops
of the level view at 1/zoom of its size, the focal length kept (at the network input the focal
grows by the zoom: the canonical camera must follow it).

    .venv/bin/python tools/camera_views.py data/kitti --split test --out data/views/kitti
    .venv/bin/meco eval --checkpoint checkpoints/meco_golf.pt --data data/views/kitti/pitch_down5 --split test

Angles as in `meco_core.data.camera_turn` (pitch > 0 looks down, yaw > 0 right, roll > 0 clockwise).
"""
from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from meco_core.data import camera_turn
from meco_core.data.camera_turn import camera_rotation, target_to_source
from meco_core.data.format import DatasetReader, DatasetWriter
from meco_core.geometry import intrinsics_matrix

# (group, view name, pitch, yaw, roll in degrees, zoom); every group holds its level view
VIEWS = (
    ("pitch", "level", 0.0, 0.0, 0.0, 1.0), ("pitch", "down2.5", 2.5, 0.0, 0.0, 1.0),
    ("pitch", "up2.5", -2.5, 0.0, 0.0, 1.0),
    ("pitch5", "level", 0.0, 0.0, 0.0, 1.0), ("pitch5", "down5", 5.0, 0.0, 0.0, 1.0),
    ("pitch5", "up5", -5.0, 0.0, 0.0, 1.0),
    ("roll", "level", 0.0, 0.0, 0.0, 1.0), ("roll", "cw5", 0.0, 0.0, 5.0, 1.0), ("roll", "ccw5", 0.0, 0.0, -5.0, 1.0),
    ("yaw", "level", 0.0, 0.0, 0.0, 1.0), ("yaw", "right15", 0.0, 15.0, 0.0, 1.0),
    ("yaw", "left15", 0.0, -15.0, 0.0, 1.0),
    ("zoom", "level", 0.0, 0.0, 0.0, 1.0), ("zoom", "x1.2", 0.0, 0.0, 0.0, 1.2), ("zoom", "x1.4", 0.0, 0.0, 0.0, 1.4),
    ("zoom", "x1.8", 0.0, 0.0, 0.0, 1.8), ("zoom", "x2.2", 0.0, 0.0, 0.0, 2.2),
)


def _fits(H: np.ndarray, out_hw: tuple[int, int], src_hw: tuple[int, int]) -> bool:
    """Every pixel of an out_hw image maps inside the source (checked along its border: a
    homography maps the rectangle's border to the border of a convex region)."""
    h, w = out_hw
    edge = np.concatenate([np.stack([np.linspace(0, w - 1, 64), np.full(64, y)], 1) for y in (0, h - 1)]
                          + [np.stack([np.full(64, x), np.linspace(0, h - 1, 64)], 1) for x in (0, w - 1)])
    p = H @ np.concatenate([edge, np.ones((len(edge), 1))], 1).T
    if (p[2] <= 0).any():
        return False
    u, v = p[0] / p[2], p[1] / p[2]
    return bool((u >= 0).all() and (u <= src_hw[1] - 1).all() and (v >= 0).all() and (v <= src_hw[0] - 1).all())


def turned_intrinsics(intrinsics, out_hw: tuple[int, int]) -> tuple[float, float, float, float]:
    """The turned camera: the source's focal lengths, principal point at the centre of out_hw."""
    fx, fy = intrinsics[0], intrinsics[1]
    return float(fx), float(fy), (out_hw[1] - 1) / 2.0, (out_hw[0] - 1) / 2.0


def common_size(intrinsics, src_hw: tuple[int, int], rotations: list[np.ndarray]) -> tuple[int, int]:
    """The largest out size (the source's aspect, scaled) that every rotation fills from the source."""
    K_src = intrinsics_matrix(*intrinsics)
    for scale in np.arange(1.0, 0.05, -0.01):
        out_hw = (int(src_hw[0] * scale) // 2 * 2, int(src_hw[1] * scale) // 2 * 2)
        K_dst = intrinsics_matrix(*turned_intrinsics(intrinsics, out_hw))
        if all(_fits(target_to_source(K_src, R, K_dst), out_hw, src_hw) for R in rotations):
            return out_hw
    raise ValueError(f"no view of a {src_hw[1]}x{src_hw[0]} frame fits every rotation asked")


def turned_view(rgb: np.ndarray, depth: np.ndarray | None, labels: np.ndarray | None, intrinsics,
                R: np.ndarray, out_hw: tuple[int, int]):
    """(rgb, depth, labels, intrinsics) of the turned camera at out_hw, its principal point at the centre
    (`meco_core.data.camera_turn.turned_view`, which moves the lidar points in 3D)."""
    intr = turned_intrinsics(intrinsics, out_hw)
    return (*camera_turn.turned_view(rgb, depth, labels, intrinsics, R, out_hw, intr), intr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("data", type=Path, help="a meco dataset whose frames carry intrinsics")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT/<group>_<view>/ (e.g. pitch_down5, zoom_x1.4)")
    args = ap.parse_args()
    reader = DatasetReader(args.data)
    samples = [reader.load(args.split, name) for name in reader.names(args.split)]
    if any(s.intrinsics is None for s in samples):
        raise SystemExit(f"{args.data}: every frame needs intrinsics to be turned")
    for group in dict.fromkeys(g for g, *_ in VIEWS):
        views = [(name, camera_rotation(p, y, r), zoom) for g, name, p, y, r, zoom in VIEWS if g == group]
        writers = {name: DatasetWriter(args.out / f"{group}_{name}", reader.class_set,
                                       source=f"{args.data} as another camera: {group} {name} (tools/camera_views.py)")
                   for name, _, _ in views}
        for sample in samples:
            level_hw = common_size(sample.intrinsics, sample.rgb.shape[:2], [R for _, R, _ in views])
            for name, R, zoom in views:
                out_hw = (int(level_hw[0] / zoom) // 2 * 2, int(level_hw[1] / zoom) // 2 * 2)
                rgb, depth, labels, intr = turned_view(sample.rgb, sample.depth_m, sample.labels, sample.intrinsics,
                                                       R, out_hw)
                writers[name].write(args.split, sample.name, rgb, depth, labels, intrinsics=intr)
        for name, writer in writers.items():
            writer.close()
            print(f"{args.out}/{group}_{name}: {writer.written.get(args.split, 0)} frames")

if __name__ == "__main__":
    main()
