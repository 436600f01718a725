"""meco_core.image_codec / meco_ros.image_conversion against rosbags-image, an independent
implementation, on real CamVid frames, for rclpy and rosbags message classes."""
from __future__ import annotations

import array
from pathlib import Path

import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.image import compressed_image_to_cvimage, image_to_cvimage
from rosbags.typesys import Stores, get_typestore
from sensor_msgs.msg import CompressedImage as RclpyCompressed
from sensor_msgs.msg import Image as RclpyImage

from meco_core.image_codec import (
    ImageDecodeError, ImageEncodeError, count_nonfinite, decode_image, to_rgb8,
)
from meco_ros.image_conversion import (
    compressed_imgmsg_to_cv2, cv2_to_compressed_imgmsg, cv2_to_imgmsg,
    imgmsg_to_cv2,
)

TS = get_typestore(Stores.ROS2_KILTED)
BagImage = TS.types["sensor_msgs/msg/Image"]
BagCompressed = TS.types["sensor_msgs/msg/CompressedImage"]
IMAGE_TYPES = [pytest.param(RclpyImage, id="rclpy"), pytest.param(BagImage, id="rosbags")]
COMPRESSED_TYPES = [pytest.param(RclpyCompressed, id="rclpy"),
                    pytest.param(BagCompressed, id="rosbags")]


@pytest.fixture(scope="module")
def bgr() -> np.ndarray:
    """A rendered golf scene (sky, textures, edges, the full 0..255 range) at an odd size to
    catch stride mistakes. Conversion parity needs *an* image, not a real one, so these tests
    run without ../shared/data; test_real_camvid_frame_roundtrip covers a real photo."""
    from meco_core.data.synth import render_frame

    rgb = render_frame(1, 0, 301, 417).rgb
    return np.ascontiguousarray(rgb[..., ::-1])


def test_real_camvid_frame_roundtrip(shared_data: Path) -> None:
    """A real CamVid photo through every 8-bit colour encoding and back, bit-exact."""
    files = sorted((shared_data / "camvid" / "train").glob("*.png"))
    if not files:
        pytest.skip("no CamVid frames in shared/data/camvid/train")
    img = cv2.imread(str(files[0]), cv2.IMREAD_COLOR)
    assert img is not None
    for enc in ("bgr8", "rgb8", "bgra8", "rgba8"):
        msg = cv2_to_imgmsg(as_encoding(img, enc), enc)
        assert np.array_equal(imgmsg_to_cv2(msg, "bgr8"), img), enc


def as_encoding(bgr: np.ndarray, enc: str) -> np.ndarray:
    """The CamVid frame in the layout/dtype of a ROS encoding."""
    gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    h, w = gray.shape
    return {
        "rgb8": rgb, "bgr8": bgr, "8UC3": rgb,
        "rgba8": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA), "bgra8": cv2.cvtColor(bgr, cv2.COLOR_BGR2BGRA),
        "8UC4": cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA),
        "mono8": gray, "8UC1": gray,
        "mono16": gray.astype(np.uint16) * 257, "16UC1": gray.astype(np.uint16) * 200,
        "rgb16": rgb.astype(np.uint16) * 257, "bgr16": bgr.astype(np.uint16) * 257,
        "16UC3": rgb.astype(np.uint16) * 257,
        "32FC1": gray.astype(np.float32) / 10.0, "64FC1": gray.astype(np.float64) / 7.0,
        "32FC3": rgb.astype(np.float32) / 255.0, "16SC1": gray.astype(np.int16) - 128,
        "bayer_rggb8": gray, "bayer_bggr8": gray,
        "yuv422": cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[:, : w - w % 2, 1:].copy(),
        "yuv422_yuy2": cv2.cvtColor(bgr, cv2.COLOR_BGR2YUV)[:, : w - w % 2, :2].copy(),
    }[enc]


ENCODINGS = ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16", "bgr16", "8UC1",
             "8UC3", "8UC4", "16UC1", "16UC3", "16SC1", "32FC1", "32FC3", "64FC1",
             "bayer_rggb8", "bayer_bggr8", "yuv422", "yuv422_yuy2"]


def raw_msg(msg_type: type, enc: str, h: int, w: int, step: int, data: bytes, big: int = 0):
    """A message built field by field (independent of cv2_to_imgmsg)."""
    if msg_type is BagImage:
        hdr = TS.types["std_msgs/msg/Header"](stamp=TS.types["builtin_interfaces/msg/Time"](sec=0, nanosec=0), frame_id="")
        return BagImage(header=hdr, height=h, width=w, encoding=enc, is_bigendian=big, step=step,
                        data=np.frombuffer(data, np.uint8).copy())
    msg = RclpyImage(height=h, width=w, encoding=enc, is_bigendian=big, step=step)
    a = array.array("B")
    a.frombytes(data)
    msg.data = a
    return msg


def wire(msg):
    """Serialize + deserialize, so the message went through the real CDR code."""
    if isinstance(msg, (RclpyImage, RclpyCompressed)):
        return deserialize_message(serialize_message(msg), type(msg))
    return TS.deserialize_cdr(TS.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)


@pytest.mark.parametrize("msg_type", IMAGE_TYPES)
@pytest.mark.parametrize("enc", ENCODINGS)
def test_roundtrip_and_rosbags_parity(bgr, enc, msg_type):
    arr = as_encoding(bgr, enc)
    msg = wire(cv2_to_imgmsg(arr, enc, msg_type=msg_type))
    assert (msg.height, msg.width, msg.encoding, msg.is_bigendian) == (arr.shape[0], arr.shape[1], enc, 0)
    assert msg.step == arr.shape[1] * (arr.shape[2] if arr.ndim == 3 else 1) * arr.dtype.itemsize
    ours = imgmsg_to_cv2(msg)
    assert ours.dtype == arr.dtype and np.array_equal(ours, arr)
    assert np.array_equal(ours, image_to_cvimage(msg))
    # the same bytes built by hand decode the same
    hand = raw_msg(msg_type, enc, arr.shape[0], arr.shape[1], msg.step, arr.tobytes())
    assert np.array_equal(imgmsg_to_cv2(hand), arr)


@pytest.mark.parametrize("msg_type", IMAGE_TYPES)
def test_decode_is_zero_copy(bgr, msg_type):
    msg = cv2_to_imgmsg(bgr, "bgr8", msg_type=msg_type)
    out = imgmsg_to_cv2(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


@pytest.mark.parametrize("msg_type", IMAGE_TYPES)
@pytest.mark.parametrize("src", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "rgb16",
                                 "bayer_rggb8", "bayer_bggr8", "yuv422", "yuv422_yuy2", "8UC3"])
@pytest.mark.parametrize("dst", ["rgb8", "bgr8", "mono8"])
def test_desired_encoding_matches_rosbags(bgr, src, dst, msg_type):
    arr = as_encoding(bgr, src)
    msg = cv2_to_imgmsg(arr, src, msg_type=msg_type)
    if src == "8UC3" and dst == "mono8":
        pytest.skip("rosbags-image refuses generic -> mono8")
    ours = imgmsg_to_cv2(msg, dst)
    ref = image_to_cvimage(msg, dst)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype == np.uint8
    # 16-bit sources: we round 255/65535 scaling (as cv_bridge does), rosbags truncates
    tol = 1 if "16" in src else 0
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= tol


@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "rgba8", "bgra8", "mono8", "mono16", "8UC1",
                                 "16UC1", "rgb16", "bayer_rggb8", "yuv422"])
def test_to_rgb8_feeds_network(bgr, enc):
    out = to_rgb8(as_encoding(bgr, enc), enc)
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3 and out.flags.c_contiguous
    if enc in ("rgb8", "bgr8", "rgba8", "bgra8"):
        assert np.array_equal(out, cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if enc in ("mono8", "mono16"):
        gray = cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY)
        assert np.array_equal(out[:, :, 1], gray)


def test_to_rgb8_refuses_float(bgr):
    with pytest.raises(ImageDecodeError, match="no colour mapping"):
        to_rgb8(as_encoding(bgr, "32FC1"), "32FC1")


@pytest.mark.parametrize("msg_type", IMAGE_TYPES)
@pytest.mark.parametrize("enc,pad", [("rgb8", 13), ("mono8", 1), ("32FC1", 8), ("16UC1", 3),
                                     ("rgba8", 64)])
def test_padded_step(bgr, enc, pad, msg_type):
    arr = as_encoding(bgr, enc)
    h, row = arr.shape[0], arr.nbytes // arr.shape[0]
    step = row + pad
    padded = np.full((h, step), 0xAB, np.uint8)
    padded[:, :row] = np.frombuffer(arr.tobytes(), np.uint8).reshape(h, row)
    msg = wire(raw_msg(msg_type, enc, h, arr.shape[1], step, padded.tobytes()))
    out = imgmsg_to_cv2(msg)
    assert out.shape == arr.shape and np.array_equal(out, arr)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))  # still a view
    assert np.array_equal(to_rgb8(out, enc), to_rgb8(arr, enc)) if enc != "32FC1" else True


@pytest.mark.parametrize("msg_type", IMAGE_TYPES)
@pytest.mark.parametrize("enc", ["mono16", "32FC1", "64FC1", "16UC3"])
def test_big_endian(bgr, enc, msg_type):
    arr = as_encoding(bgr, enc)
    step = arr.shape[1] * (arr.shape[2] if arr.ndim == 3 else 1) * arr.dtype.itemsize
    msg = raw_msg(msg_type, enc, arr.shape[0], arr.shape[1], step,
                  arr.astype(arr.dtype.newbyteorder(">")).tobytes(), big=1)
    out = imgmsg_to_cv2(msg)
    assert out.dtype.isnative and np.array_equal(out, arr)
    assert np.array_equal(out, image_to_cvimage(msg))


MALFORMED = [
    # encoding, height, width, step, data bytes, message must say
    ("rgb9", 4, 4, 12, 48, r"unsupported image encoding 'rgb9'"),
    ("", 4, 4, 12, 48, r"unsupported image encoding ''"),
    ("rgb8", 0, 4, 12, 0, r"empty image: height=0 width=4"),
    ("mono8", 4, 0, 0, 0, r"empty image: height=4 width=0"),
    ("rgb8", 4, 4, 12, 47, r"data has 47 bytes, expected step\*height = 12\*4 = 48"),
    ("32FC1", 10, 10, 40, 0, r"data has 0 bytes, expected step\*height = 40\*10 = 400"),
    ("rgb8", 4, 4, 11, 48, r"step 11 is smaller than width\*channels\*bytes = 4\*3\*1 = 12"),
    ("mono16", 4, 4, 4, 32, r"step 4 is smaller than width\*channels\*bytes = 4\*1\*2 = 8"),
    ("32FC1", 4, 4, 0, 64, r"step 0 is smaller"),
]


@pytest.mark.parametrize("msg_type", IMAGE_TYPES)
@pytest.mark.parametrize("enc,h,w,step,n,message", MALFORMED)
def test_malformed_raises_helpful_error(enc, h, w, step, n, message, msg_type):
    msg = raw_msg(msg_type, enc, h, w, step, bytes(n))
    with pytest.raises(ImageDecodeError, match=message) as info:
        imgmsg_to_cv2(msg)
    assert isinstance(info.value, ValueError)


def test_encode_mismatch_raises(bgr):
    with pytest.raises(ImageEncodeError, match="needs dtype uint8, got float32"):
        cv2_to_imgmsg(bgr.astype(np.float32), "rgb8")
    with pytest.raises(ImageEncodeError, match="needs 1 channel"):
        cv2_to_imgmsg(bgr, "mono8")
    with pytest.raises(ImageEncodeError, match="unsupported image encoding"):
        cv2_to_imgmsg(bgr, "rgb9")
    with pytest.raises(ImageDecodeError, match="conversion 32FC1 -> mono16 is not supported"):
        imgmsg_to_cv2(cv2_to_imgmsg(as_encoding(bgr, "32FC1"), "32FC1"), "mono16")


def test_passthrough_encoding_is_generic(bgr):
    msg = cv2_to_imgmsg(as_encoding(bgr, "32FC1"), "passthrough")
    assert msg.encoding == "32FC1"
    assert cv2_to_imgmsg(bgr, "passthrough").encoding == "8UC3"


@pytest.mark.parametrize("msg_type", IMAGE_TYPES)
def test_nonfinite_float_decodes_and_is_counted(bgr, msg_type):
    depth = as_encoding(bgr, "32FC1").copy()
    depth[0, :5] = np.nan
    depth[1, 0] = np.inf
    depth[2, 0] = -np.inf
    out = imgmsg_to_cv2(wire(cv2_to_imgmsg(depth, "32FC1", msg_type=msg_type)))
    assert np.array_equal(out, depth, equal_nan=True)
    assert count_nonfinite(out) == 7
    assert count_nonfinite(as_encoding(bgr, "mono16")) == 0


def test_decode_accepts_any_buffer(bgr):
    data = bgr.tobytes()
    h, w = bgr.shape[:2]
    for buf in (data, bytearray(data), memoryview(data), np.frombuffer(data, np.uint8)):
        assert np.array_equal(decode_image("bgr8", h, w, w * 3, buf), bgr)


# ---- compressed ----

@pytest.mark.parametrize("msg_type", COMPRESSED_TYPES)
@pytest.mark.parametrize("enc,target", [("rgb8", "bgr8"), ("bgr8", "bgr8"), ("mono8", "mono8"),
                                        ("mono16", "mono16"), ("16UC1", "mono16"),
                                        ("rgb16", "bgr16")])
def test_png_roundtrip_is_lossless(bgr, enc, target, msg_type):
    arr = as_encoding(bgr, enc)
    msg = wire(cv2_to_compressed_imgmsg(arr, enc, "png", msg_type=msg_type))
    assert msg.format == f"{enc}; png compressed {target}"
    out = compressed_imgmsg_to_cv2(msg)
    if enc == "rgb16":  # restored only to what the codec holds (bgr16), as image_transport
        out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    assert out.dtype == arr.dtype and np.array_equal(out, arr)
    # rosbags-image decodes the same pixels, as the codec's BGR/mono, and always 8-bit
    # (IMREAD_ANYCOLOR): a 16-bit png comes back as value >> 8 there, full depth here.
    ref = compressed_image_to_cvimage(msg)
    expect = cv2.cvtColor(arr, cv2.COLOR_RGB2BGR) if enc.startswith("rgb") else arr
    assert np.array_equal(ref, expect if arr.dtype == np.uint8 else (expect >> 8).astype(np.uint8))


@pytest.mark.parametrize("msg_type", COMPRESSED_TYPES)
@pytest.mark.parametrize("enc", ["rgb8", "bgr8", "rgba8", "mono8"])
def test_jpeg_roundtrip(bgr, enc, msg_type):
    arr = as_encoding(bgr, enc)
    msg = wire(cv2_to_compressed_imgmsg(arr, enc, "jpeg", msg_type=msg_type, quality=95))
    assert msg.format == f"{enc}; jpeg compressed {'mono8' if enc == 'mono8' else 'bgr8'}"
    out = compressed_imgmsg_to_cv2(msg)
    assert out.shape == arr.shape and out.dtype == np.uint8
    rgb_in, rgb_out = to_rgb8(arr, enc), to_rgb8(out, enc)
    assert cv2.PSNR(rgb_in, rgb_out) > 30
    ref = compressed_image_to_cvimage(msg, "rgb8")
    assert np.array_equal(compressed_imgmsg_to_cv2(msg, "rgb8"), ref)


@pytest.mark.parametrize("msg_type", COMPRESSED_TYPES)
def test_legacy_format_strings(bgr, msg_type):
    """Older image_transport publishers write just 'jpeg' / 'png': result is BGR, as OpenCV."""
    msg = cv2_to_compressed_imgmsg(bgr, "bgr8", "png", msg_type=msg_type)
    msg.format = "png"
    assert np.array_equal(compressed_imgmsg_to_cv2(msg), bgr)
    assert np.array_equal(compressed_imgmsg_to_cv2(msg, "rgb8"), cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def test_compressed_errors(bgr):
    with pytest.raises(ImageEncodeError, match="jpeg needs 8-bit"):
        cv2_to_compressed_imgmsg(as_encoding(bgr, "mono16"), "mono16", "jpeg")
    with pytest.raises(ImageEncodeError, match="unsupported compression 'tiff'"):
        cv2_to_compressed_imgmsg(bgr, "bgr8", "tiff")
    msg = cv2_to_compressed_imgmsg(bgr, "bgr8", "jpeg")
    msg.data = array.array("B", b"not a jpeg at all")
    with pytest.raises(ImageDecodeError, match="could not decode 17 bytes"):
        compressed_imgmsg_to_cv2(msg)
    msg.data = array.array("B")
    with pytest.raises(ImageDecodeError, match="no data"):
        compressed_imgmsg_to_cv2(msg)
    msg.format = "16UC1; compressedDepth png"
    with pytest.raises(ImageDecodeError, match="compressedDepth"):
        compressed_imgmsg_to_cv2(msg)
    msg.format = "bgr8; webp compressed bgr8"
    with pytest.raises(ImageDecodeError, match="unsupported compressed format"):
        compressed_imgmsg_to_cv2(msg)


def test_benchmark_runs():
    """Smoke test only; numbers are reported, not asserted."""
    from meco_ros.bench.costs import benchmark_conversion

    res = benchmark_conversion(48, 64, n=5)
    assert res["n"] == 5 and res["frames_per_s"] > 0 and res["median_ms"] > 0
