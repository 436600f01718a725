"""Synthetic golf scenes: determinism, exact-depth sanity, class coverage, lidar, dataset output."""
from __future__ import annotations

import importlib.util
import math
from types import SimpleNamespace

import numpy as np
import pytest

from meco_core.data import synth

HAS_FORMAT = importlib.util.find_spec("meco_core.data.format") is not None
SMALL = (120, 160)  # H, W: every property holds at any size; small keeps the suite fast


@pytest.fixture(scope="module")
def batch() -> list[synth.SynthFrame]:
    return [synth.render_frame(5, i, *SMALL) for i in range(20)]


def test_same_seed_and_index_is_identical() -> None:
    a, b = synth.render_frame(3, 7, *SMALL), synth.render_frame(3, 7, *SMALL)
    for name in ("rgb", "depth_m", "labels"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.camera_height_m, a.pitch_deg, a.roll_deg) == (b.camera_height_m, b.pitch_deg, b.roll_deg)


def test_different_index_seed_or_split_differs() -> None:
    a = synth.render_frame(3, 7, *SMALL)
    for other in (synth.render_frame(3, 8, *SMALL), synth.render_frame(4, 7, *SMALL),
                  synth.render_frame(3, 7, *SMALL, split="val")):
        assert not np.array_equal(a.depth_m, other.depth_m)
        assert not np.array_equal(a.rgb, other.rgb)


def test_output_types_and_camera(batch: list[synth.SynthFrame]) -> None:
    h, w = SMALL
    for f in batch:
        assert f.rgb.shape == (h, w, 3) and f.rgb.dtype == np.uint8
        assert f.depth_m.shape == (h, w) and f.depth_m.dtype == np.float32
        assert f.labels.shape == (h, w) and f.labels.dtype == np.uint8
        assert f.lidar_depth_m is None
        assert set(f.intrinsics) == {"fx", "fy", "cx", "cy", "width", "height"}
        assert (f.intrinsics["width"], f.intrinsics["height"]) == (w, h)
        hfov = 2 * math.degrees(math.atan(w / 2 / f.intrinsics["fx"]))
        assert 60 <= hfov <= 90
        assert 1.2 <= f.camera_height_m <= 2.0 and -12 <= f.pitch_deg <= -2 and abs(f.roll_deg) <= 3


def test_depth_range_and_sky(batch: list[synth.SynthFrame]) -> None:
    for f in batch:
        d = f.depth_m
        assert np.isfinite(d).all()
        assert (d >= 0).all() and (d <= synth.MAX_DEPTH_M).all()
        sky = d == 0
        assert sky.any() and (~sky).mean() > 0.4, "every view has sky above and ground below the horizon"
        assert (f.labels[sky] == synth.BACKGROUND).all(), "sky is background"
        assert (d[f.labels != synth.BACKGROUND] > 0).all(), "every non-background pixel has depth"


def test_every_class_appears_in_a_batch(batch: list[synth.SynthFrame]) -> None:
    seen = np.zeros(len(synth.CLASS_NAMES), int)
    for f in batch:
        seen += np.bincount(f.labels.ravel(), minlength=len(synth.CLASS_NAMES))[: len(synth.CLASS_NAMES)] > 0
    assert (seen > 0).all(), dict(zip(synth.CLASS_NAMES, seen))
    assert seen[synth.FAIRWAY] >= 15 and seen[synth.OBSTACLE] >= 15 and seen[synth.ROAD] >= 10


def test_ground_depth_at_bottom_centre_matches_camera_geometry(batch: list[synth.SynthFrame]) -> None:
    """Flat-ground range along the ray is camera_height / sin(angle below horizon); the ray's
    direction follows from the intrinsics, pitch and roll alone (independent of the renderer)."""
    errors = []
    for f in batch:
        k = f.intrinsics
        p, r = math.radians(f.pitch_deg), math.radians(f.roll_deg)
        v = k["height"] - 1
        for u in (math.floor(k["cx"]), math.ceil(k["cx"])):
            if f.labels[v, u] not in (synth.BACKGROUND, synth.FAIRWAY, synth.ROAD):
                continue  # obstacles and (carved) hazards are not the undisturbed ground
            xn, yn = (u - k["cx"]) / k["fx"], (v - k["cy"]) / k["fy"]
            up = xn * math.sin(r) * math.cos(p) - yn * math.cos(r) * math.cos(p) + math.sin(p)
            norm = math.sqrt(xn * xn + yn * yn + 1)
            below = math.asin(-up / norm)
            assert below > 0
            expected_z = f.camera_height_m / math.sin(below) / norm  # range -> depth along the axis
            errors.append(abs(float(f.depth_m[v, u]) - expected_z) / expected_z)
    assert len(errors) >= 20
    assert np.median(errors) < 0.05 and max(errors) < 0.25, np.round(sorted(errors), 3)


@pytest.mark.parametrize("beams", [32, 64])
def test_lidar_is_sparse_and_exact(beams: int) -> None:
    for i in range(3):
        f = synth.render_frame(9, i, 240, 320, lidar_beams=beams)
        assert f.lidar_depth_m is not None and f.lidar_depth_m.dtype == np.float32
        hit = f.lidar_depth_m > 0
        assert 0.005 < hit.mean() < 0.15
        np.testing.assert_array_equal(f.lidar_depth_m[hit], f.depth_m[hit])
        dense = synth.render_frame(9, i, 240, 320)
        np.testing.assert_array_equal(dense.depth_m, f.depth_m)  # lidar does not change the scene
    more = synth.render_frame(9, 0, 240, 320, lidar_beams=64).lidar_depth_m
    less = synth.render_frame(9, 0, 240, 320, lidar_beams=32).lidar_depth_m
    assert (more > 0).sum() > (less > 0).sum()


def test_other_sizes_render() -> None:
    f = synth.render_frame(2, 0, 97, 131)
    assert f.rgb.shape == (97, 131, 3) and f.depth_m.shape == (97, 131)
    with pytest.raises(ValueError):
        synth.render_frame(2, 0, 60, 80, lidar_beams=16)


def test_contact_sheet(tmp_path, batch: list[synth.SynthFrame]) -> None:
    import cv2

    path = synth.contact_sheet(batch[:3], tmp_path / "sheet.png")
    img = cv2.imread(str(path))
    assert img.shape[1] == 3 * SMALL[1] and img.shape[0] >= 3 * SMALL[0]


@pytest.mark.skipif(not HAS_FORMAT, reason="meco_core.data.format (DatasetWriter/DatasetReader) not written yet")
def test_generate_writes_a_readable_dataset(tmp_path) -> None:
    from meco_core.data.format import DatasetReader

    out = tmp_path / "synth"
    n = synth.generate(out, 4, seed=21, split="val", height=60, width=80, workers=2, progress=False)
    assert n == 4
    reader = DatasetReader(out)
    assert reader.class_set.names == list(synth.CLASS_NAMES)
    assert reader.intrinsics is not None and reader.intrinsics["width"] == 80
    assert reader.names("val") == [f"{i:06d}" for i in range(4)]
    for i, name in enumerate(reader.names("val")):
        s = reader.load("val", name)
        ref = synth.render_frame(21, i, 60, 80, split="val")  # same frame in this process
        np.testing.assert_array_equal(s.rgb, ref.rgb)
        np.testing.assert_array_equal(s.labels, ref.labels)
        ok = ref.depth_m < 65.0  # the format stores uint16 mm: farther is "no data"
        np.testing.assert_allclose(s.depth_m[ok], ref.depth_m[ok], atol=6e-4)


@pytest.mark.skipif(not HAS_FORMAT, reason="meco_core.data.format (DatasetWriter/DatasetReader) not written yet")
def test_generate_lidar_depth_source_and_cli_summary(tmp_path, capsys) -> None:
    from meco_core.data.format import DatasetReader

    out = tmp_path / "lidar"
    synth.generate(out, 2, seed=1, height=120, width=160, lidar_beams=32, workers=1, depth_source="lidar",
                   progress=False)
    s = DatasetReader(out).load("train", "000000")
    assert s.depth_m is not None and 0 < (s.depth_m > 0).mean() < 0.15
    with pytest.raises(ValueError):
        synth.generate(tmp_path / "bad", 1, seed=1, depth_source="lidar")
    args = SimpleNamespace(out=str(tmp_path / "cli"), n=2, seed=0, split="train", size="48x64", lidar_beams=0)
    assert synth.main_from_args(args) == 0
    text = capsys.readouterr().out
    assert "2 frames" in text and "fairway=" in text


def test_terrain_refinement_matches_a_tight_reference() -> None:
    """The default root refinement stays within 0.5 % of a 30-step bisection (the 'exact' depth)."""
    for i in range(3):
        rng = synth.frame_rng(0, i, "train")
        course = synth.make_course(rng)
        ter = synth.build_terrain(rng, course)
        z0 = float(ter.height(np.zeros((1, 1)), np.zeros((1, 1)))[0, 0])
        cam = synth.make_camera(rng, 120, 160, course.view_yaw, z0, 75.0)
        dx, dy, dz = synth.camera_rays(cam)
        o, tmax = cam.origin.astype(np.float32), np.full(dx.shape, 80, np.float32)
        t, hit = synth.trace_terrain(ter, o, dx, dy, dz, tmax)
        t_ref, hit_ref = synth.trace_terrain(ter, o, dx, dy, dz, tmax, bisect=30)
        np.testing.assert_array_equal(hit, hit_ref)
        assert (np.abs(t[hit] - t_ref[hit]) / t_ref[hit]).max() < 0.005


def test_cli_writes_a_dataset(tmp_path) -> None:
    """`meco data synth` end to end through the real argument parser."""
    from meco_core.cli import main
    from meco_core.data.format import DatasetReader

    assert main(["data", "synth", "--out", str(tmp_path), "--n", "2", "--seed", "5", "--size", "48x64"]) == 0
    reader = DatasetReader(tmp_path)
    sample = reader.load("train", reader.names("train")[0])
    assert sample.rgb.shape == (48, 64, 3) and sample.depth_m is not None and sample.labels is not None


# --- near scenery (opt-in: `meco data synth --near`) ---------------------------------------

def _frame_scene_inputs(seed: int, index: int):
    """The generator and scene parts render_frame has when it reaches place_obstacles."""
    rng = synth.frame_rng(seed, index, "train")
    course = synth.make_course(rng)
    ter = synth.build_terrain(rng, course)
    z0 = float(ter.height(np.zeros((1, 1)), np.zeros((1, 1)))[0, 0])
    cam = synth.make_camera(rng, *SMALL, course.view_yaw, z0, 75.0)
    synth.make_treeline(rng)
    synth.make_env(rng)
    return rng, course, ter, cam


def test_near_false_is_the_default_and_draws_nothing_extra() -> None:
    for i in range(3):
        rng_a, course, ter, cam = _frame_scene_inputs(4, i)
        rng_b = _frame_scene_inputs(4, i)[0]
        rng_c = _frame_scene_inputs(4, i)[0]
        plain = synth.place_obstacles(rng_a, course, ter, cam)
        off = synth.place_obstacles(rng_b, course, ter, cam, near=False)
        on = synth.place_obstacles(rng_c, course, ter, cam, near=True)
        assert off.prims == plain.prims and off.casters == plain.casters and off.spots == plain.spots
        assert rng_b.bit_generator.state == rng_a.bit_generator.state, "near=False consumes the same numbers"
        # near=True: the default passes unchanged, then one extra draw seeds the near scenery
        assert on.prims[: len(plain.prims)] == plain.prims and len(on.prims) > len(plain.prims)
        rng_a.integers(2**63)
        assert rng_c.bit_generator.state == rng_a.bit_generator.state
    for i in range(3):  # whole frames: no argument == near=False; near=True changes the scene
        a, b = synth.render_frame(6, i, *SMALL), synth.render_frame(6, i, *SMALL, near=False)
        for name in ("rgb", "depth_m", "labels"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        c = synth.render_frame(6, i, *SMALL, near=True)
        assert not np.array_equal(a.depth_m, c.depth_m) or not np.array_equal(a.labels, c.labels)


def _below_horizon(f: synth.SynthFrame) -> np.ndarray:
    k = f.intrinsics
    p, r = math.radians(f.pitch_deg), math.radians(f.roll_deg)
    xn = ((np.arange(k["width"]) - k["cx"]) / k["fx"])[None, :]
    yn = ((np.arange(k["height"]) - k["cy"]) / k["fy"])[:, None]
    up = xn * math.sin(r) * math.cos(p) - yn * math.cos(r) * math.cos(p) + math.sin(p)
    return up < 0


def test_near_scenery_adds_near_background_with_exact_depth() -> None:
    more = changed_frames = 0
    total_plain = total_near = 0
    for i in range(6):
        a = synth.render_frame(5, i, *SMALL)
        b = synth.render_frame(5, i, *SMALL, near=True)
        assert (a.camera_height_m, a.pitch_deg, a.intrinsics) == (b.camera_height_m, b.pitch_deg, b.intrinsics)
        changed = b.depth_m != a.depth_m
        # near things only occlude: nothing gets farther, sky they cover gets depth (z-buffered exactly)
        assert not ((b.depth_m > a.depth_m) & (a.depth_m > 0)).any()
        assert (b.depth_m[changed] > 0).all()
        assert set(np.unique(b.labels[changed]).tolist()) <= {synth.BACKGROUND, synth.OBSTACLE}
        changed_frames += int(changed.sum() > 50)
        below = _below_horizon(a)
        n_plain, n_near = (int(((f.labels == synth.BACKGROUND) & (f.depth_m > 0) & (f.depth_m < 30) & below).sum())
                           for f in (a, b))
        total_plain, total_near = total_plain + n_plain, total_near + n_near
        more += n_near > n_plain
    assert changed_frames >= 5, changed_frames
    assert more >= 4 and total_near > 1.2 * total_plain, (more, total_plain, total_near)


def test_bush_and_building_geometry() -> None:
    rng = np.random.default_rng(0)
    for _ in range(40):
        sc = synth.Scene()
        synth.add_bush(sc, rng, 5.0, 1.0, 2.0)
        assert 1 <= len(sc.prims) <= 3 and all(p.kind == synth.P_ELL for p in sc.prims)
        assert all(p.label == synth.TREE_LABEL and p.tex >= 0.5 for p in sc.prims)
        top = max(p.c[2] + p.half[2] for p in sc.prims) - 2.0
        reach = max(math.hypot(p.c[0] - 5, p.c[1] - 1) + max(p.half[:2]) for p in sc.prims)
        assert 0.4 <= top <= 1.6 + 1e-9 and 0.35 <= reach <= 2.0 + 1e-9
        assert len(sc.casters) == len(sc.prims) and len(sc.spots) == 1

        sc = synth.Scene()
        synth.add_building(sc, rng, 20.0, -3.0, 1.0)
        wall, roof = sc.prims[:2]
        assert all(p.kind == synth.P_BOX and p.label == synth.BACKGROUND for p in sc.prims)
        assert 2 <= wall.half[0] <= 8 and 2 <= wall.half[1] <= 6
        assert 3 <= wall.c[2] + wall.half[2] - 1.0 <= 10, "3-10 m above the ground it stands on"
        assert wall.c[2] - wall.half[2] < 1.0, "sunk into the ground"
        assert roof.c[2] > wall.c[2] + wall.half[2] - 1e-9 and sum(roof.color) < sum(wall.color)
        assert len(sc.casters) == 3 and len(sc.spots) == 1 and not sc.free(20.0, -3.0, 0.5)


@pytest.mark.skipif(not HAS_FORMAT, reason="meco_core.data.format (DatasetWriter/DatasetReader) not written yet")
def test_near_flag_through_cli_is_recorded_in_dataset_yaml(tmp_path) -> None:
    from meco_core.cli import main
    from meco_core.data.format import DatasetReader

    synth.generate(tmp_path / "plain", 2, seed=3, height=48, width=64, workers=1, progress=False)
    assert main(["data", "synth", "--n", "2", "--seed", "3", "--size", "48x64", "--out", str(tmp_path / "near"),
                 "--near"]) == 0
    plain, near = DatasetReader(tmp_path / "plain"), DatasetReader(tmp_path / "near")
    assert "near" not in plain.source and "near=on" in near.source
    assert "near=on" in (tmp_path / "near" / "dataset.yaml").read_text()
    for name in near.names("train"):
        ref = synth.render_frame(3, int(name), 48, 64, near=True)
        np.testing.assert_array_equal(near.load("train", name).labels, ref.labels)
        np.testing.assert_array_equal(near.load("train", name).rgb, ref.rgb)


def test_rough_as_fairway_changes_labels_only() -> None:
    """--rough fairway: the same image and depth; some background (rough, cut) becomes fairway, nothing else moves."""
    moved = 0
    for i in range(4):
        old, new = synth.render_frame(3, i, *SMALL), synth.render_frame(3, i, *SMALL, rough="fairway")
        np.testing.assert_array_equal(old.rgb, new.rgb)
        np.testing.assert_array_equal(old.depth_m, new.depth_m)
        changed = old.labels != new.labels
        assert (old.labels[changed] == synth.BACKGROUND).all() and (new.labels[changed] == synth.FAIRWAY).all()
        moved += int(changed.sum())
    assert moved > 0.05 * 4 * SMALL[0] * SMALL[1]  # the rough is a large share of a golf hole
    with pytest.raises(ValueError, match="rough must be one of"):
        synth.render_frame(3, 0, *SMALL, rough="green")


def test_generate_refuses_an_unknown_rough_label_before_rendering(tmp_path) -> None:
    from meco_core.data.synth.dataset import generate

    with pytest.raises(ValueError, match="rough must be one of"):
        generate(tmp_path / "out", 2, 0, rough="green", progress=False)
    assert not (tmp_path / "out").exists()
