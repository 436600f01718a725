"""Bounded input (issue 20 item 5): absurd declared sizes are refused before allocation.

Every malicious input is built for real (raw CDR bytes, PNG/JPEG headers, bag files patched
or written by hand) and fed to the code the node, `meco data from-bag` and `meco
replay-eval` use. Where memory is the point, the input is read in a fresh interpreter
whose address space may grow only HEADROOM past its imports (RLIMIT_AS): a 4 GB read or
a 30000x30000 image cannot hide there, and controls show the same input does blow that
limit when handed to rosbags / OpenCV directly. Last, an `ast` scan of the sources: YAML
through safe loaders only, no shell, torch.load with weights_only=True.
"""
from __future__ import annotations

import ast
import json
import struct
import subprocess
import sys
import textwrap
import tracemalloc
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from meco_core import defaults
from meco_core.bags import (
    BagError,
    BagMessageError,
    BagReader,
    BagWriter,
    MessageSizeError,
    image_msg,
    pointcloud2_msg,
    ros1_typestore,
    ros2_typestore,
)
from meco_core.bags import salvage, size_check
from meco_core.errors import InputSizeError, MecoError
from meco_core.image_codec import ImageDecodeError, ImageSizeError, decode_compressed, decode_image

REPO = Path(__file__).resolve().parents[1]
FOUR_GB = 0xFFFFFFF0
HEADROOM = 768 << 20
IMAGE = "sensor_msgs/msg/Image"
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc: Linux")


def run_bounded(body: str, **values: object) -> dict:
    """Run `body` in a fresh interpreter limited to HEADROOM bytes of address space past its
    imports; `values` are passed as JSON in `V`; the body fills the dict `out`, returned."""
    prog = textwrap.dedent("""
        import json, resource, sys
        import cv2, numpy as np
        import meco_core.bags, meco_core.image_codec, rosbags.highlevel
        def vm_size():
            with open("/proc/self/status") as f:
                return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmSize:"))
        limit = vm_size() + {headroom}
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        V = json.loads(sys.argv[1])
        out = {{}}
        def attempt(name, fn):
            try:
                out[name] = ["ok", repr(fn())[:200]]
            except BaseException as exc:
                out[name] = [type(exc).__name__, str(exc)[:400]]
        """).format(headroom=HEADROOM) + textwrap.dedent(body) + "\nprint(json.dumps(out))\n"
    done = subprocess.run([sys.executable, "-c", prog, json.dumps(values)], capture_output=True, text=True,
                          timeout=300, cwd=REPO)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


# ------------------------------------------------------------------ messages: CDR lengths
def _image_raw(ts, serialize) -> tuple[bytes, int]:
    """A serialised 4x5 rgb8 Image and the offset of its data length field."""
    raw = bytes(serialize(image_msg(ts, np.full((4, 5, 3), 9, np.uint8), "rgb8", 5, "cam"), IMAGE))
    off = len(raw) - 60 - 4
    assert struct.unpack_from("<I", raw, off)[0] == 60
    return raw, off


def _patch_u32(raw: bytes, off: int, value: int) -> bytes:
    return raw[:off] + struct.pack("<I", value) + raw[off + 4:]


@pytest.mark.parametrize("ros", ["ros2", "ros1"])
def test_cdr_image_with_a_4gb_data_length_is_refused(ros):
    ts = ros2_typestore() if ros == "ros2" else ros1_typestore()
    deserialize = ts.deserialize_cdr if ros == "ros2" else ts.deserialize_ros1
    raw, off = _image_raw(ts, ts.serialize_cdr if ros == "ros2" else ts.serialize_ros1)
    deserialize(raw, IMAGE)  # warm rosbags' generated code: only the refusal is measured below
    tracemalloc.start()
    try:
        with pytest.raises(Exception, match=f"Invalid sequence length {FOUR_GB}"):
            deserialize(_patch_u32(raw, off, FOUR_GB), IMAGE)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20, peak


@pytest.mark.parametrize("storage", ["sqlite3", "mcap", "ros1"])
def test_bag_skips_and_counts_a_message_with_a_4gb_length(tmp_path, storage):
    """rosbags checks CDR lengths against the raw message; the reader skips and counts it."""
    bag = tmp_path / ("b.bag" if storage == "ros1" else "b")
    with BagWriter(bag, storage=storage) as w:
        w.add_topic("/cam", IMAGE)
        ser = w.typestore.serialize_ros1 if storage == "ros1" else w.typestore.serialize_cdr
        raw, off = _image_raw(w.typestore, ser)
        for i in range(5):
            data = _patch_u32(raw, off, FOUR_GB) if i == 2 else raw
            w._writer.write(w._conns["/cam"], 1000 + i, data)  # raw bytes, as another recorder wrote them
    with BagReader(bag) as r:
        got = list(r.messages(["/cam"], strict=False))
        assert [m.log_ns for m in got] == [1000, 1001, 1003, 1004] and not r.salvaged
        assert any("/cam @ 1002 ns: undecodable message" in p and f"Invalid sequence length {FOUR_GB}" in p
                   for p in r.problems), r.problems
    with BagReader(bag) as r, pytest.raises(BagError, match="Invalid sequence length"):
        list(r.messages(["/cam"]))


# ------------------------------------------------------------------ raw Image sizes
U32 = 2**32 - 1


W3 = U32 // 3  # rgb8: a row of exactly U32 bytes


@pytest.mark.parametrize("h,w,step", [(U32, W3, U32), (U32, 5, 15), (2, 3, U32)])
def test_image_sizes_that_overflow_or_exceed_the_data_are_refused(h, w, step):
    """uint32 fields: step x height reaches 2^64 (beyond int64); compared as Python ints, never wrapped
    (as numpy uint32 the first case wraps to step*height = 1 and would pass a naive check)."""
    assert step * h > 60
    data = bytes(60)
    for cast in (int, np.uint32):
        with pytest.raises(ImageSizeError, match=r"data has 60 bytes, expected step\*height") as info:
            decode_image("rgb8", cast(h), cast(w), cast(step), data)
        assert isinstance(info.value, (ImageDecodeError, MecoError, ValueError))
        assert "\n" not in str(info.value)


def test_node_check_raw_refuses_the_same():
    """The node's own check (meco_ros.node.frames.check_raw) compares Python ints before any view."""
    from meco_ros.node.frames import InvalidFrame, check_raw

    msg = SimpleNamespace(encoding="rgb8", height=U32, width=W3, step=U32, data=bytes(60), is_bigendian=0)
    with pytest.raises(InvalidFrame, match=f"data has 60 bytes, step\\*height needs {U32 * U32}") as info:
        check_raw(msg, 8)
    assert info.value.case == "data"


# ------------------------------------------------------------------ compressed images
def png_bytes(width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width x height (8-bit RGB) followed by a tiny IDAT."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(100))) + chunk(b"IEND", b"")


def jpeg_bytes(width: int, height: int) -> bytes:
    """A real 8x8 JPEG (with an APP segment before its frame) whose SOF0 declares width x height."""
    ok, buf = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    data = bytearray(buf.tobytes())
    sof = data.find(b"\xff\xc0")
    assert ok and sof > 2
    struct.pack_into(">HH", data, sof + 5, height, width)
    return bytes(data)


@pytest.mark.parametrize("make,w,h", [(png_bytes, 100_000, 100_000), (png_bytes, 30_000, 30_000),
                                      (jpeg_bytes, 65_535, 65_535), (jpeg_bytes, 30_000, 30_000),
                                      (png_bytes, 65_535, 1), (jpeg_bytes, 1, 65_535)])
def test_compressed_header_declaring_a_huge_size_is_refused(make, w, h):
    if w * h <= defaults.MAX_IMAGE_PIXELS:
        with pytest.raises(ImageSizeError):
            decode_compressed("png", make(w, h), max_pixels=w * h - 1)
        return
    with pytest.raises(ImageSizeError, match=f"declares {w}x{h} = {w * h} pixels in its") as info:
        decode_compressed("bgr8; jpeg compressed bgr8", make(w, h))
    assert isinstance(info.value, ImageDecodeError) and isinstance(info.value, MecoError)


def test_max_pixels_is_configurable(monkeypatch):
    ok, jpg = cv2.imencode(".jpg", np.zeros((48, 64, 3), np.uint8))
    assert decode_compressed("jpeg", jpg)[0].shape == (48, 64, 3)
    monkeypatch.setattr(defaults, "MAX_IMAGE_PIXELS", 64 * 48 - 1)
    with pytest.raises(ImageSizeError, match="declares 64x48 = 3072 pixels"):
        decode_compressed("jpeg", jpg)
    assert decode_compressed("jpeg", jpg, max_pixels=64 * 48)[0].shape == (48, 64, 3)


def test_only_png_and_jpeg_reach_opencv():
    bmp = b"BM" + struct.pack("<IHHI", 54, 0, 0, 54) + struct.pack("<IiiHHI", 40, 100_000, 100_000, 1, 24, 0)
    with pytest.raises(ImageDecodeError, match="neither PNG nor JPEG"):
        decode_compressed("png", bmp + bytes(40))
    with pytest.raises(ImageDecodeError, match="no frame header"):
        decode_compressed("jpeg", b"\xff\xd8\xff\xda" + bytes(20))


@linux_only
def test_compressed_refusal_allocates_nothing():
    """Under RLIMIT_AS: refused with ImageSizeError; the control (the check disabled) shows
    OpenCV would otherwise allocate the 30000x30000 image a 600-byte JPEG header declares."""
    out = run_bounded("""
        from meco_core.image_codec import decode_compressed
        for name, data in (("png", V["png"]), ("jpeg", V["jpeg"])):
            buf = bytes.fromhex(data)
            attempt(name, lambda: decode_compressed("bgr8; jpeg compressed bgr8", buf)[0].shape)
            attempt(name + "_unchecked", lambda: decode_compressed("jpeg", buf, max_pixels=2**62)[0].shape)
        ok, small = cv2.imencode(".jpg", np.zeros((480, 640, 3), np.uint8))
        attempt("small", lambda: decode_compressed("jpeg", small)[0].shape)
    """, png=png_bytes(30_000, 30_000).hex(), jpeg=jpeg_bytes(30_000, 30_000).hex())
    assert out["png"][0] == out["jpeg"][0] == "ImageSizeError", out
    assert out["small"] == ["ok", "(480, 640, 3)"], out
    # control: unchecked, OpenCV tries to allocate 2.7 GB and fails under the limit
    assert out["jpeg_unchecked"][0] in ("error", "MemoryError"), out


# ------------------------------------------------------------------ PointCloud2
def test_pointcloud_with_a_lying_point_step_is_refused():
    from meco_core.bags import cloud_to_xyz

    ts = ros2_typestore()
    good = pointcloud2_msg(ts, np.arange(9, dtype=np.float32).reshape(3, 3), 5, "lidar")
    assert cloud_to_xyz(good).shape == (3, 3)
    lies = {
        "point_step": dict(point_step=1 << 30, row_step=3 << 30),
        "width": dict(width=U32, row_step=U32 * 12),
        "height": dict(height=U32),
    }
    for what, fields in lies.items():
        msg = pointcloud2_msg(ts, np.arange(9, dtype=np.float32).reshape(3, 3), 5, "lidar")
        for k, v in fields.items():
            setattr(msg, k, v)
        with pytest.raises(MessageSizeError, match="PointCloud2 data has 36 bytes, expected") as info:
            cloud_to_xyz(msg)
        assert isinstance(info.value, BagMessageError) and isinstance(info.value, InputSizeError), what
    msg = pointcloud2_msg(ts, np.zeros((3, 3)), 5, "lidar")
    msg.fields[2].offset = U32
    with pytest.raises(BagMessageError, match=f"field 'z' at offset {U32} exceeds point_step 12"):
        cloud_to_xyz(msg)


def test_replay_counts_a_lying_cloud_and_import_names_its_topic(tmp_path):
    """Replay skips and counts the cloud (decode_errors); from-bag stops with a BagError naming the topic."""
    from meco_core.bags import camera_info_msg
    from meco_core.bags.to_dataset import import_bag
    from meco_core.bags.replay_source import BagSource

    bag = tmp_path / "drive"
    with BagWriter(bag, storage="mcap") as w:
        ts = w.typestore
        w.add_topic("/cam/image", IMAGE)
        w.add_topic("/cam/info", "sensor_msgs/msg/CameraInfo")
        w.add_topic("/points", "sensor_msgs/msg/PointCloud2")
        K = np.array([[40.0, 0, 16], [0, 40.0, 12], [0, 0, 1]])
        for i in range(2):
            t = 1_000_000_000 + i * 100_000_000
            w.write("/cam/image", t, image_msg(ts, np.zeros((24, 32, 3), np.uint8), "rgb8", t, "cam"))
            w.write("/cam/info", t, camera_info_msg(ts, K, 32, 24, t, "cam"))
            cloud = pointcloud2_msg(ts, np.ones((3, 3)), t, "cam")
            if i == 1:
                cloud.point_step, cloud.row_step = 1 << 30, 3 << 30  # uint32 fields
            w.write("/points", t, cloud)
    with BagSource(bag, "/cam/image", lidar_topic="/points", info_topic="/cam/info") as src:
        frames = list(src.frames())
    assert len(frames) == 2 and src.counts["decode_errors"] == 1
    assert any("undecodable cloud message: PointCloud2 data has 36 bytes" in p for p in src.problems), src.problems
    with pytest.raises(BagError, match=r"/points message at 1100000000 ns: PointCloud2 data has 36 bytes"):
        import_bag(bag, tmp_path / "out", verbose=False)


# ------------------------------------------------------------------ bag files: record lengths
def mcap_record(op: int, body: bytes, length: int | None = None) -> bytes:
    return bytes([op]) + struct.pack("<Q", len(body) if length is None else length) + body


def mcap_str(text: str | bytes) -> bytes:
    b = text.encode() if isinstance(text, str) else text
    return struct.pack("<I", len(b)) + b


def handmade_mcap(path: Path, n: int, lie_at: int | None) -> Path:
    """An unchunked MCAP of n Image messages, written by hand; message `lie_at` declares a 4 GB record."""
    ts = ros2_typestore()
    raw, _ = _image_raw(ts, ts.serialize_cdr)
    msgdef = ts.generate_msgdef(IMAGE, ros_version=2)[0]
    out = [b"\x89MCAP0\r\n", mcap_record(0x01, mcap_str("ros2") + mcap_str("handmade")),
           mcap_record(0x03, struct.pack("<H", 1) + mcap_str(IMAGE) + mcap_str("ros2msg") + mcap_str(msgdef)),
           mcap_record(0x04, struct.pack("<HH", 1, 1) + mcap_str("/cam") + mcap_str("cdr") + struct.pack("<I", 0))]
    for i in range(n):
        body = struct.pack("<HIQQ", 1, i, 1000 + i, 1000 + i) + raw
        out.append(mcap_record(0x05, body, length=(1 << 32) if i == lie_at else None))
    out += [mcap_record(0x0F, struct.pack("<I", 0)), mcap_record(0x02, struct.pack("<QQI", 0, 0, 0)),
            b"\x89MCAP0\r\n"]
    path.write_bytes(b"".join(out))
    return path


@pytest.mark.parametrize("kind", ["mcap-zstd", "ros1-bz2", "ros1-lz4"])
def test_compressed_bags_pass_the_size_check(tmp_path, kind):
    """Intact bags of other writers' compression settings are read by rosbags, not salvaged."""
    if kind == "mcap-zstd":
        from rosbags.rosbag2 import StoragePlugin, Writer
        from rosbags.rosbag2.enums import CompressionFormat, CompressionMode

        ts, bag = ros2_typestore(), tmp_path / "z"
        w = Writer(bag, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
        w.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
        with w:
            conn = w.add_connection("/cam", IMAGE, typestore=ts)
            for i in range(4):
                w.write(conn, 1000 + i, ts.serialize_cdr(image_msg(ts, np.zeros((4, 5, 3), np.uint8), "rgb8", i,
                                                                   "c"), IMAGE))
        assert size_check.check_sizes(next(bag.glob("*.mcap"))) is None
    else:
        bag = _ros1_bag(tmp_path / "b.bag", kind.split("-")[1])
        assert size_check.check_sizes(bag) is None
    with BagReader(bag) as r:
        assert len(list(r.messages(["/cam"]))) == 4 and not r.salvaged


def test_handmade_mcap_reads(tmp_path):
    """The hand-written MCAP is valid: rosbags reads it, and check_sizes finds nothing."""
    bag = handmade_mcap(tmp_path / "ok.mcap", 4, None)
    assert size_check.check_sizes(bag) is None
    with BagReader(bag) as r:
        assert len(list(r.messages(["/cam"]))) == 4 and not r.salvaged


@linux_only
def test_mcap_record_declaring_4gb_is_refused_unread(tmp_path):
    bag = handmade_mcap(tmp_path / "lie.mcap", 5, 3)
    found = size_check.check_sizes(bag)
    assert found.startswith("the MCAP record (op 0x05) at offset "), found
    offset = int(found.split()[7])
    out = run_bounded("""
        from rosbags.highlevel import AnyReader
        from meco_core.bags import BagReader
        with BagReader(V["bag"]) as r:
            out["stamps"] = [m.log_ns for m in r.messages(["/cam"], strict=False)]
            out["problems"], out["salvaged"] = r.problems, r.salvaged
        def rosbags_alone():
            with AnyReader([__import__("pathlib").Path(V["bag"])]) as r:
                return len(list(r.messages()))
        attempt("rosbags", rosbags_alone)
    """, bag=str(bag))
    assert out["stamps"] == [1000, 1001, 1002] and out["salvaged"], out
    text = " ".join(out["problems"])
    assert f"declares {1 << 32} bytes, the file has" in text, text
    assert f"refused: an MCAP record (op 0x05) at offset {offset} declares" in text, text
    assert "MAX_BAG_RECORD_BYTES" in text, text
    # control: rosbags alone reads the 4 GB it is told (MemoryError under the limit)
    assert out["rosbags"][0] == "MemoryError", out


def _mcap_records(raw: bytes, start: int = 8):
    pos = start
    while pos + 9 <= len(raw):
        op, (length,) = raw[pos], struct.unpack_from("<Q", raw, pos + 1)
        yield pos, op, length
        if op == 0x02:
            return
        pos += 9 + length


@linux_only
def test_mcap_chunk_index_lying_about_its_chunk(tmp_path):
    """The summary's chunk index (what rosbags seeks by) claims 4 GB compressed: salvage reads
    every message from the chunks themselves instead."""
    bag = tmp_path / "drive"
    with BagWriter(bag, storage="mcap") as w:
        w.add_topic("/cam", IMAGE)
        for i in range(6):
            w.write("/cam", 1000 + i, image_msg(w.typestore, np.zeros((4, 5, 3), np.uint8), "rgb8", 1000 + i, "c"))
    mcap = next(bag.glob("*.mcap"))
    assert size_check.check_sizes(mcap) is None
    raw = bytearray(mcap.read_bytes())
    pos = next(p for p, op, _ in _mcap_records(bytes(raw)) if op == 0x08)
    body = pos + 9
    (map_len,) = struct.unpack_from("<I", raw, body + 32)
    (clen,) = struct.unpack_from("<I", raw, body + 36 + map_len + 8)
    struct.pack_into("<Q", raw, body + 36 + map_len + 12 + clen, 1 << 32)  # compressed_size
    mcap.write_bytes(bytes(raw))
    assert "(4294967296 compressed)" in size_check.check_sizes(mcap)
    out = run_bounded("""
        from rosbags.highlevel import AnyReader
        from meco_core.bags import BagReader
        with BagReader(V["bag"]) as r:
            out["stamps"] = [m.log_ns for m in r.messages(["/cam"], strict=False)]
            out["problems"] = r.problems
        def rosbags_alone():
            with AnyReader([__import__("pathlib").Path(V["bag"])]) as r:
                return len(list(r.messages()))
        attempt("rosbags", rosbags_alone)
    """, bag=str(bag))
    assert out["stamps"] == list(range(1000, 1006)), out
    assert "InputSizeError" in out["problems"][0] and "chunk index at offset" in out["problems"][0], out
    assert out["rosbags"][0] == "MemoryError", out


def _ros1_records(raw: bytes):
    pos = 13
    while pos < len(raw):
        (hlen,) = struct.unpack_from("<I", raw, pos)
        fields, off = {}, pos + 4
        while off < pos + 4 + hlen:
            (n,) = struct.unpack_from("<I", raw, off)
            key, _, value = raw[off + 4:off + 4 + n].partition(b"=")
            fields[key.decode()] = (value, off + 4 + len(key) + 1)
            off += 4 + n
        (dlen,) = struct.unpack_from("<I", raw, pos + 4 + hlen)
        yield pos, fields, hlen, dlen
        pos += 8 + hlen + dlen


def _ros1_bag(path: Path, compression: str | None = None) -> Path:
    from rosbags.rosbag1 import Writer

    ts = ros1_typestore()
    w = Writer(path)
    if compression:
        w.set_compression(getattr(Writer.CompressionFormat, compression.upper()))
    with w:
        conn = w.add_connection("/cam", IMAGE, typestore=ts)
        for i in range(4):
            w.write(conn, 1000 + i, ts.serialize_ros1(image_msg(ts, np.full((4, 5, 3), i, np.uint8), "rgb8",
                                                                1000 + i, "c"), IMAGE))
    return path


@linux_only
@pytest.mark.parametrize("lie", ["chunk_length", "index_pos", "lz4_content_size"])
def test_ros1_bag_with_lying_sizes(tmp_path, lie):
    bag = _ros1_bag(tmp_path / "drive.bag", "lz4" if lie == "lz4_content_size" else None)
    assert size_check.check_sizes(bag) is None
    with BagReader(bag) as r:
        assert len(list(r.messages(["/cam"]))) == 4
    raw = bytearray(bag.read_bytes())
    records = list(_ros1_records(bytes(raw)))
    chunk_pos, fields, hlen, _ = next(rec for rec in records if rec[1]["op"][0] == b"\x05")
    if lie == "chunk_length":
        struct.pack_into("<I", raw, chunk_pos + 4 + hlen, FOUR_GB)
        expect = f"the ROS 1 record at offset {chunk_pos} declares {FOUR_GB} bytes"
    elif lie == "index_pos":
        _, at = records[0][1]["index_pos"]
        struct.pack_into("<Q", raw, at, chunk_pos + 40)  # into the middle of the chunk
        expect = f"index_pos {chunk_pos + 40} is not the start of an index record"
    else:
        data = chunk_pos + 8 + hlen
        assert raw[data:data + 4] == b"\x04\x22\x4d\x18" and raw[data + 4] & 0x08  # lz4 frame with its size
        struct.pack_into("<Q", raw, data + 6, 1 << 40)
        raw[data + 14] = (xxh32(bytes(raw[data + 4:data + 14])) >> 8) & 0xFF  # a valid header checksum
        expect = f"its lz4 frame declares {1 << 40} bytes, the chunk"
    bag.write_bytes(bytes(raw))
    assert expect in size_check.check_sizes(bag)
    out = run_bounded("""
        from meco_core.bags import BagReader
        with BagReader(V["bag"]) as r:
            out["n"] = len(list(r.messages(["/cam"], strict=False))) if "/cam" in r.topics else 0
            out["problems"], out["salvaged"] = r.problems, r.salvaged
    """, bag=str(bag))
    assert out["salvaged"] and expect in out["problems"][0], out
    # salvage scans records in file order: a chunk it refuses (4 GB length: where would the next record
    # start?) or cannot decode (the lz4 frame fails its size check) is lost, an index lie costs nothing
    assert out["n"] == (4 if lie == "index_pos" else 0), out


def test_sqlite_blob_claiming_more_than_its_record(tmp_path):
    """sqlite3 bags: the engine checks a blob's declared size against its record (CorruptError)."""
    import sqlite3

    bag = tmp_path / "b"
    with BagWriter(bag, storage="sqlite3") as w:
        w.add_topic("/cam", IMAGE)
        for i in range(3):
            w.write("/cam", 1000 + i, image_msg(w.typestore, np.full((4, 5, 3), 7 + i, np.uint8), "rgb8", i, "c"))
    db = next(bag.glob("*.db3"))
    with sqlite3.connect(db) as con:
        blob = bytes(con.execute("SELECT data FROM messages WHERE id = 2").fetchone()[0])
    con.close()
    raw = bytearray(db.read_bytes())
    at = raw.find(blob)
    serial = 2 * len(blob) + 12  # sqlite serial type of a blob, a 2-byte varint here
    varint = raw.rfind(bytes([0x80 | serial >> 7, serial & 0x7F]), 0, at)
    big = 2 * 8000 + 12
    raw[varint:varint + 2] = bytes([0x80 | big >> 7, big & 0x7F])
    db.write_bytes(bytes(raw))
    with BagReader(bag) as r:
        got = list(r.messages(["/cam"], strict=False))
        assert len(got) == 1 and "malformed" in " ".join(r.problems), r.problems


def test_salvage_decompression_stops_at_the_declared_size():
    import bz2

    bomb = bz2.compress(bytes(10 << 20))
    assert len(salvage._stream_decompress(bomb, "bz2", 10 << 20)) == 10 << 20
    with pytest.raises(InputSizeError, match="decompresses to more than the 1000 bytes it declares"):
        salvage._stream_decompress(bomb, "bz2", 1000)
    with pytest.raises(InputSizeError, match="MAX_BAG_RECORD_BYTES"):
        salvage._stream_decompress(bomb, "bz2", 1 << 40)


def xxh32(data: bytes, seed: int = 0) -> int:
    """xxHash32 (the lz4 frame header checksum), for the hand-patched lz4 frame."""
    p1, p2, p3, p4, p5, m = 2654435761, 2246822519, 3266489917, 668265263, 374761393, 0xFFFFFFFF
    rotl = lambda x, r: ((x << r) | (x >> (32 - r))) & m  # noqa: E731
    n, i = len(data), 0
    if n >= 16:
        v = [(seed + p1 + p2) & m, (seed + p2) & m, seed & m, (seed - p1) & m]
        while i + 16 <= n:
            for j in range(4):
                v[j] = rotl((v[j] + struct.unpack_from("<I", data, i + 4 * j)[0] * p2) & m, 13) * p1 & m
            i += 16
        h = (rotl(v[0], 1) + rotl(v[1], 7) + rotl(v[2], 12) + rotl(v[3], 18)) & m
    else:
        h = (seed + p5) & m
    h = (h + n) & m
    while i + 4 <= n:
        h = rotl((h + struct.unpack_from("<I", data, i)[0] * p3) & m, 17) * p4 & m
        i += 4
    while i < n:
        h = rotl((h + data[i] * p5) & m, 11) * p1 & m
        i += 1
    h ^= h >> 15
    h = h * p2 & m
    h ^= h >> 13
    h = h * p3 & m
    return h ^ (h >> 16)


# ------------------------------------------------------------------ source scan: yaml, shell, torch.load
YAML_UNSAFE = {"unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def unsafe_calls(source: str, name: str = "<snippet>") -> list[str]:
    """'file:line what' for every yaml.load without a SafeLoader, unsafe YAML loader, shell=True,
    os.system / os.popen / subprocess.getoutput, and torch.load without weights_only=True."""
    found = []
    for node in ast.walk(ast.parse(source, name)):
        where = f"{name}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ImportFrom) and node.module in ("yaml", "os", "subprocess", "torch"):
            bad = {a.name for a in node.names} & (YAML_UNSAFE | {"load", "load_all", "system", "popen",
                                                                   "getoutput", "getstatusoutput"})
            if bad:
                found.append(f"{where} from {node.module} import {', '.join(sorted(bad))}")
        if not isinstance(node, ast.Call):
            continue
        func = _dotted(node.func)
        kw = {k.arg: k.value for k in node.keywords}
        if func in ("yaml.load", "yaml.load_all"):
            loader = _dotted(kw["Loader"]) if "Loader" in kw else ""
            if not loader.endswith("SafeLoader"):
                found.append(f"{where} {func} without a SafeLoader")
        elif func.startswith("yaml.") and func.split(".", 1)[1] in YAML_UNSAFE:
            found.append(f"{where} {func}")
        elif func in ("os.system", "os.popen", "subprocess.getoutput", "subprocess.getstatusoutput"):
            found.append(f"{where} {func} (runs a shell)")
        elif func == "torch.load":
            w = kw.get("weights_only")
            if not (isinstance(w, ast.Constant) and w.value is True):
                found.append(f"{where} torch.load without weights_only=True")
        shell = kw.get("shell")
        if shell is not None and not (isinstance(shell, ast.Constant) and not shell.value):
            found.append(f"{where} {func or 'call'}(shell=...)")
    return found


def _python_sources() -> list[Path]:
    files = [REPO / "setup.py", REPO / "tools" / "perception_node"]
    for folder in ("meco_core", "meco_ros", "tools", "launch", "test"):
        files += sorted((REPO / folder).rglob("*.py"))
    return [f for f in files if f.is_file()]


def test_source_scan_catches_each_violation():
    """The scan can fail: each kind of violation in a snippet is reported, the safe forms are not."""
    bad = textwrap.dedent("""
        import os, subprocess, torch, yaml
        from yaml import unsafe_load
        yaml.load(text)
        yaml.load(text, Loader=yaml.Loader)
        yaml.full_load(text)
        subprocess.run(f"ls {user}", shell=True)
        subprocess.Popen(cmd, shell=flag)
        os.system("rm " + path)
        os.popen(cmd)
        torch.load(path)
        torch.load(path, weights_only=False)
    """)
    found = unsafe_calls(bad)
    assert [f.split(" ", 1)[1] for f in found] == [
        "from yaml import unsafe_load", "yaml.load without a SafeLoader", "yaml.load without a SafeLoader",
        "yaml.full_load", "subprocess.run(shell=...)", "subprocess.Popen(shell=...)", "os.system (runs a shell)",
        "os.popen (runs a shell)", "torch.load without weights_only=True", "torch.load without weights_only=True",
    ], found
    good = textwrap.dedent("""
        import subprocess, torch, yaml
        yaml.safe_load(text); yaml.load(text, Loader=yaml.SafeLoader); yaml.load(t, Loader=MySafeLoader)
        subprocess.run(["git", "status"], shell=False); subprocess.run(["ls", user])
        torch.load(path, map_location="cpu", weights_only=True)
    """)
    assert unsafe_calls(good) == []


def test_sources_use_safe_yaml_no_shell_and_weights_only():
    sources = _python_sources()
    assert len(sources) > 50 and any(p.name == "reader.py" for p in sources)
    found = [hit for p in sources for hit in unsafe_calls(p.read_text(), str(p.relative_to(REPO)))]
    assert found == [], found
