"""`meco data labels`: a user's own labelled frames, as labelling tools export them (CVAT colour
masks with labelmap.txt, id masks, palette PNGs), into golf classes; errors before anything is
written when a label has nowhere to go."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from meco_core.classes import GOLF
from meco_core.cli import main
from meco_core.data.format import DatasetFormatError, DatasetReader
from meco_core.data.labelled_folder import convert_labelled_folder, read_palette

CVAT_LABELMAP = """# label:color_rgb:parts:actions
background:0,0,0::
grass:51,221,255::
sand:250,250,55::
path:140,120,240::
tree:36,179,83::
person:255,0,204::
"""
COLOURS = {"background": (0, 0, 0), "grass": (51, 221, 255), "sand": (250, 250, 55), "path": (140, 120, 240),
           "tree": (36, 179, 83), "person": (255, 0, 204)}
GOLF_MAP = "grass=fairway,sand=hazard,path=road,tree=background,person=obstacle,background=ignore"


def labelled_scene(h: int = 48, w: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(RGB image, RGB colour mask): tree band, grass, a sand trap, a path, a person, an unlabelled
    corner and one stray pixel of a colour not in the palette."""
    mask = np.zeros((h, w, 3), np.uint8)
    mask[:12] = COLOURS["tree"]
    mask[12:] = COLOURS["grass"]
    mask[30:40, 5:20] = COLOURS["sand"]
    mask[20:, 40:50] = COLOURS["path"]
    mask[14:26, 55:58] = COLOURS["person"]
    mask[44:, :4] = COLOURS["background"]  # CVAT's background: what nobody labelled
    mask[0, 0] = (1, 2, 3)
    image = (mask // 2 + 40).astype(np.uint8)
    return image, mask


def expected_ids(mask: np.ndarray) -> np.ndarray:
    want = {"tree": 0, "grass": 1, "sand": 2, "path": 3, "person": 4, "background": 255}
    ids = np.full(mask.shape[:2], 255, np.uint8)
    for name, colour in COLOURS.items():
        ids[(mask == colour).all(-1)] = want[name]
    return ids


@pytest.fixture()
def cvat_export(tmp_path) -> Path:
    root = tmp_path / "export"
    (root / "images").mkdir(parents=True)
    (root / "SegmentationClass").mkdir()
    (root / "labelmap.txt").write_text(CVAT_LABELMAP)
    for name in ("hole 3 (tee)", "hole4"):
        image, mask = labelled_scene()
        cv2.imwrite(str(root / "images" / f"{name}.jpg"), image[..., ::-1])
        cv2.imwrite(str(root / "SegmentationClass" / f"{name}.png"), mask[..., ::-1])
    cv2.imwrite(str(root / "images" / "not_labelled_yet.jpg"), image[..., ::-1])
    return root


def test_cvat_colour_masks_into_golf_classes(cvat_export, tmp_path) -> None:
    out = tmp_path / "my_course"
    stats = convert_labelled_folder(cvat_export / "images", cvat_export / "SegmentationClass", out,
                                    palette=str(cvat_export / "labelmap.txt"), label_map=GOLF_MAP, hfov=70.0)
    assert stats["written"] == 2 and stats["unpaired_images"] == ["not_labelled_yet.jpg"]
    assert stats["unknown_colour_pixels"] == 2  # the stray pixel in each mask
    reader = DatasetReader(out)
    assert reader.class_set.names == GOLF.names and sorted(reader.names("train")) == ["hole4", "hole_3__tee_"]
    sample = reader.load("train", "hole4")
    _, mask = labelled_scene()
    assert np.array_equal(sample.labels, expected_ids(mask))
    f = 32.0 / np.tan(np.radians(35.0))  # --hfov 70 on a 64-pixel-wide frame
    assert sample.intrinsics == pytest.approx((f, f, 31.5, 23.5))
    assert stats["class_pixels"]["obstacle"] == 2 * 36


def test_id_masks_and_palette_pngs(tmp_path) -> None:
    images, masks = tmp_path / "img", tmp_path / "ids"
    images.mkdir()
    masks.mkdir()
    ids = np.zeros((32, 40), np.uint8)
    ids[16:] = 1
    ids[20:, 10:20] = 3
    ids[0, :5] = 255
    cv2.imwrite(str(images / "a.png"), np.full((32, 40, 3), 90, np.uint8))
    Image.fromarray(ids, mode="L").save(masks / "a.png")
    cv2.imwrite(str(images / "b.png"), np.full((32, 40, 3), 90, np.uint8))
    pal = Image.fromarray(ids, mode="P")
    pal.putpalette([v for c in GOLF.colors for v in c] + [0] * 3 * (256 - len(GOLF.colors)))
    pal.save(masks / "b.png")
    convert_labelled_folder(images, masks, tmp_path / "out")
    reader = DatasetReader(tmp_path / "out")
    for name in ("a", "b"):
        assert np.array_equal(reader.load("train", name).labels, ids)
    ids[5, 5] = 7
    Image.fromarray(ids, mode="L").save(masks / "a.png")
    with pytest.raises(DatasetFormatError, match=r"class ids \[7\] are not 'golf' ids .* needs --palette"):
        convert_labelled_folder(images, masks, tmp_path / "out2")


def test_labels_without_a_class_fail_before_writing(cvat_export, tmp_path) -> None:
    out = tmp_path / "never"
    with pytest.raises(DatasetFormatError, match=r"labels \['grass', 'sand', 'path', 'tree', 'person'\] are not "
                                                 r"'golf' classes .* --map \"grass=background\""):
        convert_labelled_folder(cvat_export / "images", cvat_export / "SegmentationClass", out,
                                palette=str(cvat_export / "labelmap.txt"))
    with pytest.raises(DatasetFormatError, match=r"--map targets \['green'\] are not 'golf' classes"):
        convert_labelled_folder(cvat_export / "images", cvat_export / "SegmentationClass", out,
                                palette=str(cvat_export / "labelmap.txt"), label_map="grass=green")
    with pytest.raises(DatasetFormatError, match=r"a colour mask \(RGB\) needs --palette"):
        convert_labelled_folder(cvat_export / "images", cvat_export / "SegmentationClass", out)
    assert not out.exists()


def test_yaml_palette_and_mask_size_mismatch(cvat_export, tmp_path) -> None:
    yaml_palette = tmp_path / "palette.yaml"
    yaml_palette.write_text("".join(f"{n}: [{r}, {g}, {b}]\n" for n, (r, g, b) in COLOURS.items()))
    assert read_palette(yaml_palette) == read_palette(cvat_export / "labelmap.txt") == COLOURS
    cv2.imwrite(str(cvat_export / "SegmentationClass" / "hole4.png"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(DatasetFormatError, match=r"hole4.png: mask 10x10 but image 64x48"):
        convert_labelled_folder(cvat_export / "images", cvat_export / "SegmentationClass", tmp_path / "o",
                                palette=str(yaml_palette), label_map=GOLF_MAP)
    assert not (tmp_path / "o").exists()  # found before the first frame was written


def test_cli(cvat_export, tmp_path, capsys) -> None:
    args = ["data", "labels", "--images", str(cvat_export / "images"), "--masks", str(cvat_export / "SegmentationClass"),
            "--palette", str(cvat_export / "labelmap.txt")]
    assert main([*args, "--out", str(tmp_path / "a")]) == 2
    assert "are not 'golf' classes" in capsys.readouterr().err
    assert main([*args, "--out", str(tmp_path / "b"), "--map", GOLF_MAP, "--intrinsics", "50,50,32,24",
                 "--intrinsics-size", "48x64"]) == 0
    printed = capsys.readouterr().out
    assert "2 frames" in printed and "1 images without a mask of the same name, skipped: not_labelled_yet.jpg" in printed
    assert DatasetReader(tmp_path / "b").load("train", "hole4").intrinsics == (50.0, 50.0, 32.0, 24.0)
    assert main(["data", "labels", "--images", str(tmp_path / "nowhere"), "--masks", str(tmp_path),
                 "--out", str(tmp_path / "c")]) == 2
    assert "no such folder" in capsys.readouterr().err


YCOR_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "ycor"


@pytest.mark.skipif(not YCOR_DIR.is_dir(), reason="shared YCOR data not present")
def test_real_ycor_frames_as_a_labelling_tool_export(tmp_path) -> None:
    """Real frames: YCOR's palette-PNG masks read through --palette and --map land on the same
    golf labels as `meco data ycor` followed by the registered ycor->golf remap."""
    from meco_core.classes import YCOR, get_remap
    from meco_core.data.ycor import convert_ycor

    frames = sorted((p for p in (YCOR_DIR / "train").iterdir() if (p / "rgb.jpg").exists()), key=lambda p: int(p.name))[:3]
    images, masks = tmp_path / "images", tmp_path / "masks"
    images.mkdir()
    masks.mkdir()
    for f in frames:  # the export layout: images/ID.jpg, masks/ID.png
        (images / f"{f.name}.jpg").symlink_to(f / "rgb.jpg")
        (masks / f"{f.name}.png").symlink_to(f / "labels.png")
    palette = tmp_path / "ycor.yaml"
    palette.write_text("".join(f"{n}: [{r}, {g}, {b}]\n" for n, (r, g, b) in zip(YCOR.names, YCOR.colors)))
    golf_map = ("sky=background,rough_trail=hazard,smooth_trail=hazard,traversable_grass=fairway,"
                "high_vegetation=background,low_vegetation=background,puddle=hazard,obstacle=obstacle")
    convert_labelled_folder(images, masks, tmp_path / "mine", palette=str(palette), label_map=golf_map)
    convert_ycor(YCOR_DIR, tmp_path / "ycor", holdout=None, size=None, pseudo=False, limit=3, progress=False)
    mine, ref = DatasetReader(tmp_path / "mine"), DatasetReader(tmp_path / "ycor")
    remap = get_remap("ycor", "golf")
    for f in frames:
        ours = mine.load("train", f.name).labels
        theirs = remap[ref.load("train", ref.names("train")[frames.index(f)]).labels]
        assert ours.shape == theirs.shape and (ours != 255).mean() > 0.5
        assert np.array_equal(ours, theirs)
