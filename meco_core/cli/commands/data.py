"""`meco data ...`: convert datasets into the meco-dataset/1 format (see meco_core.data.format).

Subcommands:
  camvid     CamVid (SegNet layout) -> labels (camvid classes), optional pseudo-depth
  ycor       Yamaha-CMU Off-Road -> labels (ycor classes) + geometric pseudo-depth
  rellis     one RELLIS-3D camera+lidar frame -> sparse depth + golf labels
  kitti      KITTI object frames (image_2 + velodyne + calib) -> sparse depth, per-frame intrinsics
  labels     your own labelled frames: images + masks from a labelling tool (class ids, or colours + palette)
  synth      synthetic scenes (meco_core.data.synth)
  from-bag   rosbag (ROS 1/2) camera + lidar -> dataset (meco_core.bags.to_dataset)
  make-bag   dataset -> rosbag for replay tests (meco_core.bags.from_dataset)
The last three delegate to `main_from_args(args)` of their module, which receives the
parsed options of its subcommand (`meco data SOURCE --help`); converters are imported only when their subcommand runs.
The options of from-bag and make-bag are generated from their dataclasses (meco_core.bag_options).
"""
from __future__ import annotations

import argparse
import importlib
from typing import Callable

from meco_core.bag_options import ImportBagOptions, MakeBagOptions
from meco_core.data.pseudo_depth import MAX_GROUND_DEPTH_M
from meco_core.options import add_options
from meco_core.sizes import parse_size


def _run_camvid(args: argparse.Namespace) -> int:
    from meco_core.data.camvid import convert_camvid

    counts = convert_camvid(args.root, args.out, limit=args.limit, splits=args.splits, pseudo=args.pseudo_depth,
                            hfov_deg=args.hfov, horizon_frac=args.horizon, camera_height=args.camera_height,
                            max_ground_depth=args.max_ground_depth)
    print(f"CamVid -> {args.out}: " + ", ".join(f"{s} {n}" for s, n in counts.items()))
    return 0


def _run_rellis(args: argparse.Namespace) -> int:
    from meco_core.data.rellis import convert_rellis_frame

    stats = convert_rellis_frame(args.root, args.out, split=args.split, direction=args.direction)
    for key, value in stats.items():
        print(f"  {key}: {value:.4f}" if isinstance(value, float) else f"  {key}: {value}")
    agree = stats["label_agreement"]
    ok = agree == agree and agree > 0.5  # NaN when no labels
    verdict = "OK" if ok else "SUSPICIOUS: check transforms.yaml direction / calibration"
    print(
        f"RELLIS -> {args.out}: {stats['points_in_image']} lidar points in the image, "
        f"label agreement {agree:.3f} (other direction {stats['label_agreement_other_direction']:.3f}), "
        f"direction {stats['direction']}: {verdict}"
    )
    return 0 if ok else 1


def _run_ycor(args: argparse.Namespace) -> int:
    from meco_core.data.ycor import convert_ycor

    stats = convert_ycor(args.root, args.out, holdout=args.holdout, holdout_every=args.holdout_every,
                         size=None if args.full_size else args.size,
                         pseudo=not args.no_pseudo_depth, hfov_deg=args.hfov, horizon_frac=args.horizon,
                         camera_height=args.camera_height, limit=args.limit,
                         max_ground_depth=args.max_ground_depth)
    print(f"YCOR -> {args.out}: " + ", ".join(f"{s} {n}" for s, n in sorted(stats["splits"].items()))
          + f" ({_holdout_text(args.holdout, args.holdout_every)}); {stats['frames_with_depth']} frames with "
          f"pseudo-depth; {stats['unknown_colour_pixels']} pixels of unknown colour (ignored)")
    print(f"  {stats['camera_note']}")
    return 0


def _holdout_text(holdout: tuple[int, int] | None, every: int) -> str:
    if holdout is None:
        return "nothing held out"
    which = "" if every == 1 else f"1 in {every} frames of "
    return f"{which}ids {holdout[0]}-{holdout[1]} held out as val"


def _id_range(text: str) -> tuple[int, int] | None:
    if text == "none":
        return None
    try:
        lo, hi = (int(v) for v in text.split("-"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected FIRST-LAST ids, e.g. 1000-1149; got {text!r}") from None
    if lo > hi:
        raise argparse.ArgumentTypeError(f"empty id range {text!r}")
    return lo, hi


def _pseudo_depth_args(p: argparse.ArgumentParser, hfov: float, horizon: float, height: float) -> None:
    """The assumed camera of geometric pseudo-depth (meco_core.data.pseudo_depth)."""
    p.add_argument("--hfov", type=float, default=hfov, help="assumed horizontal field of view, degrees")
    p.add_argument("--horizon", type=float, default=horizon, help="assumed horizon row as a fraction of the height")
    p.add_argument("--camera-height", type=float, default=height, help="assumed camera height above ground, m")
    p.add_argument("--max-ground-depth", type=float, default=MAX_GROUND_DEPTH_M,
                   help="ground farther than this (m) gets no pseudo-depth: near the horizon a one-row error in the "
                        "assumed horizon is tens of metres")


def _run_kitti(args: argparse.Namespace) -> int:
    from meco_core.data.kitti import convert_kitti

    stats = convert_kitti(args.root, args.out, split=args.split, limit=args.limit)
    for f in stats["per_frame"]:
        print(f"  {f['name']}: {f['width']}x{f['height']} fx {f['fx']:.1f}, {f['points_in_image']}/{f['points_total']} "
              f"lidar points in the image, {f['depth_pixels']} depth pixels, "
              f"{f['depth_min_m']:.2f}-{f['depth_max_m']:.2f} m")
    far = f", {stats['depth_out_of_range']} pixels beyond 65.535 m dropped" if stats["depth_out_of_range"] else ""
    print(f"KITTI -> {args.out}: {stats['frames']} frames in split {stats['split']!r}{far}")
    return 0


def _run_labels(args: argparse.Namespace) -> int:
    from meco_core.data.format import DatasetFormatError
    from meco_core.data.labelled_folder import convert_labelled_folder
    from meco_core.errors import MecoError

    try:
        stats = convert_labelled_folder(args.images, args.masks, args.out, target=args.classes, palette=args.palette,
                                        label_map=args.map, split=args.split, hfov=args.hfov,
                                        intrinsics=args.intrinsics, intrinsics_size=args.intrinsics_size)
    except (DatasetFormatError, KeyError, ValueError) as exc:
        raise MecoError(str(exc).strip("'\"")) from None
    total = max(1, sum(stats["class_pixels"].values()))
    shares = ", ".join(f"{n} {100 * v / total:.1f} %" for n, v in stats["class_pixels"].items())
    print(f"labelled frames -> {args.out} [{args.split}]: {stats['written']} frames ({shares} of labelled pixels)")
    if stats["unknown_colour_pixels"]:
        print(f"  {stats['unknown_colour_pixels']} pixels of a colour not in the palette: unlabelled (255)")
    if stats["unpaired_images"]:
        first = ", ".join(stats["unpaired_images"][:5])
        print(f"  {len(stats['unpaired_images'])} images without a mask of the same name, skipped: {first}"
              + (" ..." if len(stats["unpaired_images"]) > 5 else ""))
    return 0


def _delegate(module: str) -> Callable[[argparse.Namespace], int]:
    """Handler calling `<module>.main_from_args(args)` (a bare name: under meco_core.data); the
    module is imported only when its command runs, so `meco --help` stays instant."""

    def run(args: argparse.Namespace) -> int:
        full = module if "." in module else f"meco_core.data.{module}"
        mod = importlib.import_module(full)
        return int(mod.main_from_args(args) or 0)

    return run


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    from meco_core.data import camvid, ycor  # light modules: their assumed-camera defaults

    parser = subparsers.add_parser("data", help="convert datasets to the meco format", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(handler=lambda args: (parser.print_help(), 2)[1])
    sub = parser.add_subparsers(dest="data_command", metavar="SOURCE")

    p = sub.add_parser("camvid", help="CamVid (train/ trainannot/ val/ valannot/ [test/ testannot/])")
    p.add_argument("--root", required=True, help="CamVid folder")
    p.add_argument("--out", required=True, help="output dataset root")
    p.add_argument("--limit", type=int, default=None, help="first N images per split (quick tests)")
    p.add_argument("--splits", nargs="+", default=None, help="subset of train val test (default: all found)")
    p.add_argument("--pseudo-depth", action="store_true", help="add geometric pseudo-depth under an assumed camera")
    _pseudo_depth_args(p, camvid.ASSUMED_HFOV_DEG, camvid.ASSUMED_HORIZON_FRAC, camvid.ASSUMED_CAMERA_HEIGHT_M)
    p.set_defaults(handler=_run_camvid)

    p = sub.add_parser("ycor", help="Yamaha-CMU Off-Road (train/<id>/rgb.jpg + labels.png) -> ycor labels + pseudo-depth")
    p.add_argument("--root", required=True, help="YCOR folder (with train/<id>/)")
    p.add_argument("--out", required=True, help="output dataset root")
    p.add_argument("--holdout", type=_id_range, default=ycor.DEFAULT_HOLDOUT,
                   help="FIRST-LAST: contiguous frame ids written to split val, kept out of training "
                        "(default %(default)s); 'none': every frame trains")
    p.add_argument("--holdout-every", type=int, default=1, metavar="N",
                   help="only every Nth frame of the held-out block goes to val, the others train "
                        "(measures training on a frame's neighbours; default 1: the whole block)")
    p.add_argument("--size", type=parse_size, default=ycor.DEFAULT_SIZE, help="HxW written (default 272x512)")
    p.add_argument("--full-size", action="store_true", help="keep the frames' own size (1024x544)")
    p.add_argument("--no-pseudo-depth", action="store_true", help="labels only, no geometric pseudo-depth")
    _pseudo_depth_args(p, ycor.ASSUMED_HFOV_DEG, ycor.ASSUMED_HORIZON_FRAC, ycor.ASSUMED_CAMERA_HEIGHT_M)
    p.add_argument("--limit", type=int, default=None, help="first N frames (quick tests)")
    p.set_defaults(handler=_run_ycor)

    p = sub.add_parser("rellis", help="one RELLIS-3D frame: image + Ouster scan -> sparse depth + golf labels")
    p.add_argument("--root", required=True, help="folder with frame*.jpg/.png, *.bin, *.label, camera_info.txt, transforms.yaml")
    p.add_argument("--out", required=True, help="output dataset root")
    p.add_argument("--split", default="test")
    p.add_argument("--direction", choices=("auto", "as-is", "inverse"), default="auto",
                   help="how transforms.yaml maps lidar to camera; auto = best label agreement")
    p.set_defaults(handler=_run_rellis)

    p = sub.add_parser("kitti", help="KITTI object frames: image_2 + velodyne + calib -> sparse depth (golf classes)")
    p.add_argument("--root", required=True, help="folder with image_2/, velodyne/, calib/ (KITTI object layout)")
    p.add_argument("--out", required=True, help="output dataset root")
    p.add_argument("--split", default="test")
    p.add_argument("--limit", type=_positive_int, default=None, help="first N frames, sorted by name (quick tests)")
    p.set_defaults(handler=_run_kitti)

    p = sub.add_parser("labels", help="your own labelled frames: images + masks from a labelling tool",
                       description="Images and masks pair by file stem. Masks are class ids of --classes (one "
                                   "channel or palette PNG, 255 = unlabelled) or colours with --palette; palette "
                                   "labels reach the classes by name or --map (see meco_core/data/labelled_folder.py).")
    p.add_argument("--images", required=True, help="folder of images")
    p.add_argument("--masks", required=True, help="folder of masks, one per image with the same file stem")
    p.add_argument("--out", required=True, help="output dataset root")
    p.add_argument("--split", default="train")
    p.add_argument("--classes", default="golf", help="class set written (a registered one: golf, camvid, ycor)")
    p.add_argument("--palette", default=None,
                   help="colour masks: CVAT labelmap.txt (name:r,g,b::) or YAML {name: [r, g, b]}")
    p.add_argument("--map", default=None, metavar="SRC=DST,...",
                   help="palette label -> class name ('ignore' = unlabelled), or a YAML file of the same")
    camera = p.add_mutually_exclusive_group()
    camera.add_argument("--hfov", type=float, default=None, help="the camera's horizontal field of view, degrees")
    camera.add_argument("--intrinsics", default=None, metavar="FX,FY,CX,CY", help="the camera's intrinsics")
    p.add_argument("--intrinsics-size", type=parse_size, default=None,
                   help="HxW the --intrinsics are for (default: every frame's own size)")
    p.set_defaults(handler=_run_labels)

    p = sub.add_parser("synth", help="synthetic golf-course scenes with exact depth and labels")
    p.add_argument("--out", required=True, help="output dataset root")
    p.add_argument("--n", type=_positive_int, default=100, help="number of samples (>= 1)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--split", default="train")
    p.add_argument("--size", type=parse_size, default=(240, 320), help="HxW (parsed to a (height, width) tuple)")
    p.add_argument("--lidar-beams", type=int, choices=(0, 32, 64), default=0,
                   help="0 = dense depth, else simulate a lidar with this many beams (sparse depth)")
    p.add_argument("--hfov", default=None,
                   help="horizontal field of view in degrees (default 75, one camera for the dataset), or "
                        "'random' (45-90 deg) / 'random:LOW-HIGH' drawn per frame, intrinsics stored per frame "
                        "(focal-length variety)")
    p.add_argument("--near", action="store_true",
                   help="add near scenery: 2-8 bushes, trees, buildings, parked carts or people at 3-30 m in "
                        "view beside the path (off by default: the default frames do not change)")
    p.add_argument("--rough", choices=("background", "fairway"), default="background",
                   help="label of the rough and the first cut: background (as always) or fairway (drivable "
                        "turf, as real grass is labelled); the images are the same")
    p.set_defaults(handler=_delegate("synth"))

    p = sub.add_parser("from-bag", help="rosbag (ROS 1 .bag or ROS 2 folder) camera + lidar -> dataset")
    p.add_argument("--bag", required=True, help="bag file or ROS 2 bag folder")
    p.add_argument("--out", required=True, help="output dataset root")
    add_options(p, ImportBagOptions)
    p.set_defaults(handler=_delegate("meco_core.bags.to_dataset"))

    p = sub.add_parser("make-bag", help="dataset split -> rosbag (images, camera_info, optional lidar) for replay")
    p.add_argument("--data", required=True, help="meco dataset root")
    p.add_argument("--out", required=True, help="output bag path")
    add_options(p, MakeBagOptions)
    p.set_defaults(handler=_delegate("meco_core.bags.from_dataset"))
