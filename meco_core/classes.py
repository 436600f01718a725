"""Class sets (names + colours) and label remaps between datasets.

One `ClassSet` travels with every dataset (`dataset.yaml`), checkpoint and ROS message so
that a label id always means the same thing. Remaps are 256-entry lookup tables so that
`lut[labels]` converts a whole image in one vectorised step.

Golf set (the MECO paper's 5 golf-cart classes) and how the other datasets map onto it:

- fairway:  drivable turf. RELLIS grass.
- hazard:   ground the cart should avoid or that is not firm: golf bunkers/water. RELLIS
            dirt, mud, puddle, water (bare earth is the closest analogue of a sand bunker).
- road:     paved cart paths. RELLIS asphalt, concrete; CamVid Road and Pavement (a
            paved sidewalk is what a golf-cart path looks like).
- obstacle: discrete things on or next to the drivable area that the cart must not hit:
            RELLIS vehicle, person, pole, object, log, barrier, fence, rubble; CamVid Car,
            Pedestrian, Bicyclist, Pole, SignSymbol, Fence.
- background: scenery bounding the course: sky, trees, bushes, buildings (RELLIS sky,
            tree, bush, building; CamVid Sky, Building). Trees and bushes are not
            drivable, but on a golf course they line the holes rather than stand in the
            path; the depth head still reports their distance.
- void/unlabelled (RELLIS 0, CamVid 11, YCOR white void / ego vehicle) -> 255 (ignored by
  losses and metrics).

CamVid Tree -> 255 (ignored), not background: in CamVid's labels "Tree" covers trees *and*
roadside grass verges, so mapping it to background taught the golf model that real grass is
background, the opposite of fairway. One class that mixes the two cannot teach either; real
trees are taught by YCOR's high vegetation and RELLIS's tree, real grass by YCOR's
traversable grass and RELLIS's grass.

YCOR (Yamaha-CMU Off-Road) -> golf, by what a golf cart may do there:
- traversable grass -> fairway (drivable turf, the point of the class);
- rough trail and smooth trail -> hazard: both are unpaved bare earth, which the golf set
  calls hazard (as RELLIS dirt/mud: the closest analogue of a sand bunker), while road means
  paved. The two YCOR labels are not told apart by appearance: look-alike dirt tracks into
  trees are rough in one frame and smooth in another (held-out frames 1093 and 1071), and
  the model trained with smooth -> road called 81 % of held-out smooth trail hazard and
  24 % of rough trail road. (Until golf model v5: smooth trail -> road.)
- puddle -> hazard (water, as RELLIS puddle/water);
- high vegetation (trees) and non-traversable low vegetation (bushes) -> background
  (scenery bounding the course, as RELLIS tree/bush);
- obstacle -> obstacle; sky -> background.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from .defaults import IGNORE_INDEX


@dataclass
class ClassSet:
    """Names and display colours of the classes of a segmentation task."""

    name: str
    names: list[str]
    colors: list[tuple[int, int, int]]
    ignore_index: int = IGNORE_INDEX

    def __post_init__(self) -> None:
        self.names = [str(n) for n in self.names]
        self.colors = [tuple(int(c) for c in col) for col in self.colors]  # type: ignore[misc]
        if len(self.names) != len(self.colors):
            raise ValueError(f"class set {self.name!r}: {len(self.names)} names but {len(self.colors)} colors")
        if not 0 < len(self.names) <= 255:
            raise ValueError(f"class set {self.name!r}: need 1..255 classes, got {len(self.names)}")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.colors):
            raise ValueError(f"class set {self.name!r}: colors must be (r, g, b) in 0..255")
        if not len(self.names) <= self.ignore_index <= 255:
            raise ValueError(f"class set {self.name!r}: ignore_index {self.ignore_index} collides with a class id")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def palette(self) -> np.ndarray:
        """(256, 3) uint8 RGB lookup table; ids without a class (incl. ignore) are black."""
        lut = np.zeros((256, 3), np.uint8)
        lut[: self.num_classes] = np.asarray(self.colors, np.uint8)
        return lut

    def colorize(self, labels: np.ndarray) -> np.ndarray:
        """Label image (H, W) of ids -> RGB uint8 (H, W, 3)."""
        labels = np.asarray(labels)
        if labels.dtype != np.uint8:
            labels = np.where((labels >= 0) & (labels < 256), labels, self.ignore_index).astype(np.uint8)
        return self.palette()[labels]

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "names": list(self.names), "colors": [list(c) for c in self.colors]}
        if self.ignore_index != IGNORE_INDEX:
            out["ignore_index"] = self.ignore_index
        return out

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "ClassSet":
        try:
            return cls(
                name=str(d["name"]),
                names=list(d["names"]),
                colors=[tuple(c) for c in d["colors"]],
                ignore_index=int(d.get("ignore_index", IGNORE_INDEX)),
            )
        except KeyError as exc:
            raise ValueError(f"class set dict lacks {exc.args[0]!r}: {dict(d)!r}") from None

    def same_classes(self, other: "ClassSet") -> bool:
        """True when ids mean the same thing (colours may differ)."""
        return self.names == other.names and self.ignore_index == other.ignore_index


GOLF = ClassSet(
    name="golf",
    names=["background", "fairway", "hazard", "road", "obstacle"],
    colors=[(70, 70, 70), (40, 160, 40), (220, 180, 60), (128, 64, 128), (220, 20, 60)],
)

# Colours of the SegNet tutorial (Kendall) for the 11-class CamVid set; 11 = Unlabelled -> 255.
CAMVID = ClassSet(
    name="camvid",
    names=["Sky", "Building", "Pole", "Road", "Pavement", "Tree", "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist"],
    colors=[
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
        (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ],
)

# Yamaha-CMU Off-Road, colours as in its label PNGs; white (void / ego vehicle) -> 255.
YCOR = ClassSet(
    name="ycor",
    names=["sky", "rough_trail", "smooth_trail", "traversable_grass", "high_vegetation",
           "low_vegetation", "puddle", "obstacle"],
    colors=[(1, 88, 255), (156, 76, 30), (178, 176, 153), (128, 255, 0), (40, 80, 0), (0, 160, 0),
            (255, 0, 128), (255, 0, 0)],
)

CLASS_SETS: dict[str, ClassSet] = {cs.name: cs for cs in (GOLF, CAMVID, YCOR)}


def get_class_set(spec: "str | Mapping[str, Any] | ClassSet") -> ClassSet:
    """A class set from its registry name, a dict (as in dataset.yaml) or a ClassSet."""
    if isinstance(spec, ClassSet):
        return spec
    if isinstance(spec, str):
        try:
            return CLASS_SETS[spec]
        except KeyError:
            raise KeyError(f"unknown class set {spec!r}; known: {sorted(CLASS_SETS)}") from None
    if isinstance(spec, Mapping):
        return ClassSet.from_dict(spec)
    raise TypeError(f"cannot make a ClassSet from {type(spec).__name__}")


def make_remap(src_ids_to_dst: Mapping[int, int], default: int = IGNORE_INDEX) -> np.ndarray:
    """(256,) uint8 LUT: `lut[src] = dst` for listed ids, `default` for all others.

    255 always maps to 255 unless listed, so already-ignored pixels stay ignored.
    """
    lut = np.full(256, default, np.uint8)
    lut[IGNORE_INDEX] = IGNORE_INDEX
    for src, dst in src_ids_to_dst.items():
        if not (0 <= int(src) < 256 and 0 <= int(dst) < 256):
            raise ValueError(f"remap entry {src}->{dst} outside 0..255")
        lut[int(src)] = int(dst)
    return lut


# RELLIS-3D ontology ids (see ../shared/data/README.md).
RELLIS_NAMES: dict[int, str] = {
    0: "void", 1: "dirt", 3: "grass", 4: "tree", 5: "pole", 6: "water", 7: "sky", 8: "vehicle",
    9: "object", 10: "asphalt", 12: "building", 15: "log", 17: "person", 18: "fence", 19: "bush",
    23: "concrete", 27: "barrier", 31: "puddle", 33: "mud", 34: "rubble",
}

_G = {n: i for i, n in enumerate(GOLF.names)}
_RELLIS_TO_GOLF = {
    "dirt": "hazard", "grass": "fairway", "tree": "background", "pole": "obstacle", "water": "hazard",
    "sky": "background", "vehicle": "obstacle", "object": "obstacle", "asphalt": "road",
    "building": "background", "log": "obstacle", "person": "obstacle", "fence": "obstacle",
    "bush": "background", "concrete": "road", "barrier": "obstacle", "puddle": "hazard",
    "mud": "hazard", "rubble": "obstacle",
}
_CAMVID_TO_GOLF = {
    "Sky": "background", "Building": "background", "Pole": "obstacle", "Road": "road", "Pavement": "road",
    "SignSymbol": "obstacle", "Fence": "obstacle", "Car": "obstacle",
    "Pedestrian": "obstacle", "Bicyclist": "obstacle",
}

_YCOR_TO_GOLF = {
    "sky": "background", "rough_trail": "hazard", "smooth_trail": "hazard", "traversable_grass": "fairway",
    "high_vegetation": "background", "low_vegetation": "background", "puddle": "hazard", "obstacle": "obstacle",
}

# "<source>-><target>": LUT from source ids to target ids (void/unlabelled and unknown ids -> 255).
REMAPS: dict[str, np.ndarray] = {
    "rellis->golf": make_remap({i: _G[_RELLIS_TO_GOLF[n]] for i, n in RELLIS_NAMES.items() if n != "void"}),
    "camvid->golf": make_remap({CAMVID.names.index(n): _G[g] for n, g in _CAMVID_TO_GOLF.items()}),  # Tree -> 255
    "ycor->golf": make_remap({YCOR.names.index(n): _G[g] for n, g in _YCOR_TO_GOLF.items()}),
}


def get_remap(src: str, dst: str) -> np.ndarray | None:
    """The LUT from class set `src` to `dst`: identity when equal, None when unknown."""
    if src == dst:
        return np.arange(256, dtype=np.uint8)
    return REMAPS.get(f"{src}->{dst}")
