"""`meco predict` on the inputs a user has: image files, a folder, a video, a broken file,
run with the shipped golf model (CPU, a few seconds)."""
from __future__ import annotations

import json
import struct
from pathlib import Path

import cv2
import numpy as np
import pytest

from meco_core.cli import main
from meco_core.inference.frame_files import count_frames, expand_inputs, iter_frames

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "checkpoints" / "meco_golf.pt"


def scene(h: int = 240, w: int = 320, seed: int = 0) -> np.ndarray:
    """Sky over green ground with a grey path: something a golf model reads as a scene."""
    rng = np.random.default_rng(seed)
    img = np.zeros((h, w, 3), np.uint8)
    img[: h // 3] = (150, 190, 235)
    img[h // 3:] = (60, 140, 50)
    cols = np.arange(w)[None, :]
    rows = np.arange(h)[:, None]
    path = (np.abs(cols - w / 2) < (rows - h / 3) * 0.6) & (rows > h // 3)
    img[path] = (120, 120, 115)
    return np.clip(img.astype(np.int16) + rng.integers(-12, 12, img.shape), 0, 255).astype(np.uint8)


def write_video(path: Path, n: int, h: int = 120, w: int = 160) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    assert writer.isOpened()
    for i in range(n):
        writer.write(cv2.cvtColor(scene(h, w, seed=i), cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.fixture()
def inputs(tmp_path) -> Path:
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), cv2.cvtColor(scene(), cv2.COLOR_RGB2BGR))
    cv2.imwrite(str(folder / "b.jpg"), cv2.cvtColor(scene(480, 640, seed=1), cv2.COLOR_RGB2BGR))
    (folder / "notes.txt").write_text("not an image, not listed")
    return folder


def test_frames_from_files_folders_and_videos(inputs, tmp_path) -> None:
    video = write_video(tmp_path / "drive.avi", 5)
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    files = expand_inputs([inputs, video, tmp_path / "broken.png"])
    assert [p.name for p in files] == ["a.png", "b.jpg", "drive.avi", "broken.png"]
    assert count_frames(files, every=2) == 2 + 3 + 1
    got = list(iter_frames(files, every=2))
    assert [f.name for f in got] == ["a", "b", "drive_000000", "drive_000002", "drive_000004", "broken"]
    assert got[1].rgb.shape == (480, 640, 3) and got[2].rgb.shape == (120, 160, 3)
    assert got[-1].rgb is None and "broken.png is not a readable image (truncated" in got[-1].error
    with pytest.raises(FileNotFoundError, match="nowhere"):
        expand_inputs([tmp_path / "nowhere"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images"):
        expand_inputs([empty])


def test_predict_writes_depth_labels_panels_and_reports_bad_files(inputs, tmp_path, capsys) -> None:
    (inputs / "broken.jpg").write_bytes(b"")
    out = tmp_path / "out"
    rc = main(["predict", str(inputs), str(write_video(tmp_path / "drive.avi", 3)), "--checkpoint", str(SHIPPED),
               "--out", str(out), "--intrinsics", "250,250,159.5,119.5", "--depth-npy", "--threads", "1",
               "--no-progress"])
    assert rc == 1  # one unreadable file: reported, the rest written
    report = json.loads((out / "predictions.json").read_text())
    names = [f["name"] for f in report["frames"]]
    assert names == ["a", "b", "drive_000000", "drive_000001", "drive_000002"]
    assert report["failed"] == [{"name": "broken", "source": str(inputs / "broken.jpg"),
                                 "error": f"{inputs / 'broken.jpg'} is empty"}]
    by_name = {f["name"]: f for f in report["frames"]}
    # --intrinsics describe the first frame's size; the 640x480 frame is the same camera at twice the size
    assert by_name["a"]["intrinsics"] == [250.0, 250.0, 159.5, 119.5]
    assert by_name["b"]["intrinsics"] == [500.0, 500.0, 319.5, 239.5]
    for name, (h, w) in (("a", (240, 320)), ("b", (480, 640)), ("drive_000001", (120, 160))):
        mm = cv2.imread(str(out / "depth" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        labels = cv2.imread(str(out / "labels" / f"{name}.png"), cv2.IMREAD_UNCHANGED)
        metres = np.load(out / "depth" / f"{name}.npy")
        assert mm.dtype == np.uint16 and mm.shape == (h, w) and labels.shape == (h, w)
        assert set(np.unique(labels)) <= set(range(5)) | {255}
        valid = mm > 0
        assert np.allclose(mm[valid] / 1000.0, metres[valid], atol=6e-4)
        panel = cv2.imread(str(out / "panels" / f"{name}.jpg"))
        assert panel.shape[:2] == (h, 3 * w)
        assert abs(sum(by_name[name]["class_pct"].values()) - 100.0) < 0.5
    assert "1 unreadable, skipped" in capsys.readouterr().out


def test_the_camera_sets_the_depth_scale(inputs, tmp_path) -> None:
    """The same frame read as taken by a 40-degree lens is farther than by an 80-degree one, by
    the ratio of their focal lengths (the canonical camera): the camera reaches the model."""
    medians = {}
    for hfov in (40, 80):
        out = tmp_path / f"hfov{hfov}"
        assert main(["predict", str(inputs / "a.png"), "--checkpoint", str(SHIPPED), "--out", str(out),
                     "--hfov", str(hfov), "--no-panels", "--threads", "1", "--no-progress"]) == 0
        report = json.loads((out / "predictions.json").read_text())
        assert report["camera"] == f"hfov {hfov} deg" and report["frames"][0]["camera"] == "given"
        medians[hfov] = report["frames"][0]["depth_median_m"]
    ratio = np.tan(np.radians(40)) / np.tan(np.radians(20))
    assert medians[40] / medians[80] == pytest.approx(ratio, rel=0.02)
    out = tmp_path / "default"
    assert main(["predict", str(inputs / "a.png"), "--checkpoint", str(SHIPPED), "--out", str(out),
                 "--no-panels", "--no-progress"]) == 0
    report = json.loads((out / "predictions.json").read_text())
    assert report["frames"][0]["camera"] == "default" and "intrinsics" not in report["frames"][0]


@pytest.mark.parametrize("args, message", [
    (["--intrinsics", "250,250,160"], "--intrinsics: intrinsics must be (fx, fy, cx, cy)"),
    (["--hfov", "0"], "--hfov must be in [1, 180) degrees"),
    (["--every", "0"], "--every must be >= 1"),
])
def test_bad_options_are_one_line(inputs, tmp_path, capsys, args, message) -> None:
    assert main(["predict", str(inputs), "--checkpoint", str(SHIPPED), "--out", str(tmp_path / "o"), *args]) == 2
    assert message in capsys.readouterr().err


def test_an_image_declaring_a_huge_size_is_refused_before_decoding(tmp_path) -> None:
    """A 600-byte JPEG whose header says 30000x30000: OpenCV would allocate 2.7 GB for it."""
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 30000, 30000)
    (tmp_path / "bomb.jpg").write_bytes(bytes(data))
    (frame,) = iter_frames([tmp_path / "bomb.jpg"])
    assert frame.rgb is None and "declares 30000x30000 in its JPEG header" in frame.error


def test_nothing_readable_is_an_error(tmp_path, capsys) -> None:
    (tmp_path / "x.png").write_bytes(b"nope")
    assert main(["predict", str(tmp_path / "x.png"), "--checkpoint", str(SHIPPED), "--out", str(tmp_path / "o"),
                 "--no-progress"]) == 2
    assert "none of the 1 inputs could be read (first:" in capsys.readouterr().err
    assert main(["predict", str(tmp_path / "missing.png"), "--checkpoint", str(SHIPPED), "--out",
                 str(tmp_path / "o")]) == 2
    assert "no such file or folder" in capsys.readouterr().err
