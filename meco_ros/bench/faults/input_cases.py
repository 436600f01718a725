"""Fault case on malformed input (issue 20): bursts of malformed CompressedImage (truncated
JPEGs, PNGs with lying headers, empty messages, 50 MB of noise) against the node's compressed
image input. The node, the client and the frames come from node_harness.
"""
from __future__ import annotations

import random
import struct
import time
import zlib
from typing import Any

from meco_ros.bench.faults.base import FaultContext, fault_case
from meco_ros.bench.faults.node_harness import (Client, check_log, client_for, outputs_since, ros_stamp, running_node,
                                                test_image, wait_until, watch_depth_and_status)


# ================================================================ 6. malformed compressed images
def png_with_size(png: bytes, width: int, height: int, fix_crc: bool = True) -> bytes:
    """A PNG whose IHDR claims width x height (CRC recomputed unless fix_crc is False)."""
    b = bytearray(png)
    b[16:24] = struct.pack(">II", width, height)
    if fix_crc:
        b[29:33] = struct.pack(">I", zlib.crc32(bytes(b[12:29])))
    return bytes(b)


BURST_PERIOD_S = 1 / 30
NOISE = "50 MB of noise"


def malformed_bursts() -> dict[str, list[tuple[str, bytes]]]:
    """kind -> [(format, data)]: truncated JPEGs, PNGs with lying headers, empty, 50 MB noise."""
    import cv2

    bgr = cv2.cvtColor(test_image(240, 320), cv2.COLOR_RGB2BGR)
    jpg = cv2.imencode(".jpg", bgr)[1].tobytes()
    png = cv2.imencode(".png", bgr)[1].tobytes()
    noise = random.Random(6).randbytes(50 * 1024 * 1024)
    return {
        "truncated JPEG": [("jpeg", jpg[: int(len(jpg) * f)]) for f in (0.05, 0.3, 0.6, 0.9, 0.999)],
        "PNG with a lying header": [("png", png_with_size(png, 4096, 4096)), ("png", png_with_size(png, 320, 2400)),
                                    ("png", png_with_size(png, 30000, 30000)),
                                    ("png", png_with_size(png, 100000, 100000)),
                                    ("png", png_with_size(png, 640, 480, fix_crc=False))],
        "0 bytes": [("jpeg", b""), ("png", b""), ("rgb8; jpeg compressed bgr8", b"")],
        NOISE: [("jpeg", noise), ("png", noise)],
    }


def received_total(client: Client) -> int:
    """frames_received of the newest Stats (0 before the first)."""
    s = client.latest_stats()
    return int(s.frames_received) if s is not None else 0


def send_burst(client: Client, pub: Any, items: list[tuple[str, bytes]], confirm: bool) -> tuple[int, list[int]]:
    """Publish `items` at a camera's rate; (messages sent, their stamps). With `confirm` each
    is resent (up to 4 times, 1.5 s apart) until the node's received counter moves: Fast DDS
    does not always deliver a 50 MB best-effort message, and a message that never reached
    the node says nothing about the node."""
    from sensor_msgs.msg import CompressedImage

    sent, stamps = 0, []
    for fmt, data in items:
        for _ in range(4 if confirm else 1):
            before = received_total(client)
            stamp = time.time_ns()
            msg = CompressedImage(format=fmt, data=data)
            msg.header.stamp, msg.header.frame_id = ros_stamp(stamp), "camera"
            pub.publish(msg)
            stamps.append(stamp)
            sent += 1
            time.sleep(BURST_PERIOD_S)  # a camera's rate: the node's KEEP_LAST 1 input keeps only the newest
            if not confirm or wait_until(lambda n=before: received_total(client) > n, 1.5):
                break
    return sent, stamps


def good_compressed(stamp: int) -> Any:
    """A valid JPEG CompressedImage."""
    import cv2
    from sensor_msgs.msg import CompressedImage

    bgr = cv2.cvtColor(test_image(240, 320), cv2.COLOR_RGB2BGR)
    msg = CompressedImage(format="jpeg", data=cv2.imencode(".jpg", bgr)[1].tobytes())
    msg.header.stamp, msg.header.frame_id = ros_stamp(stamp), "camera"
    return msg


def good_frames_answered(client: Client, pub: Any, timeout: float = 15.0) -> bool:
    """Publish good JPEGs every 0.2 s until one of them comes back as depth."""
    since = time.time_ns()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pub.publish(good_compressed(time.time_ns()))
        if wait_until(lambda: bool(outputs_since(client, "depth", since)), 0.2):
            return True
    return False


def counters(client: Client, after: float) -> dict[str, int]:
    """received/processed/dropped/invalid totals from the first Stats sent after `after`
    (time.time()), plus the per-case 'invalid compressed' of /diagnostics."""
    n = len(client.stats)
    wait_until(lambda: len(client.stats) > n + 1 and time.time() > after, 10.0)
    s = client.latest_stats()
    diag = client.latest_diagnostics()
    return {"received": s.frames_received, "processed": s.frames_processed, "dropped": s.frames_dropped,
            "invalid": s.frames_invalid, "errors": s.inference_errors,
            "invalid compressed": int(diag.get("invalid compressed", 0))}


@fault_case("malformed_compressed",
            "bursts at 30 Hz of malformed CompressedImage (5 truncated JPEGs, 5 PNGs with lying headers, 3 x 0 bytes, "
            "2 x 50 MB of noise): every one that reaches the node counted (invalid, or dropped unseen), none "
            "published, "
            "node alive and answering good frames after", fast=True)
def malformed_compressed(ctx: FaultContext) -> tuple[bool, str, dict[str, Any]]:
    from sensor_msgs.msg import CompressedImage

    bursts = malformed_bursts()
    with running_node(ctx, "malformed", **{"topics.image_compressed": "image/compressed"}) as target, \
            client_for(target, "fault_malformed_camera", watch_depth_and_status) as client:
        pub = client.publisher("image/compressed", CompressedImage)
        before_ok = good_frames_answered(client, pub)
        time.sleep(0.5)
        before = counters(client, time.time())
        rss_before = target.resources()["rss_kb"]
        sent, stamps = 0, []
        for kind, items in bursts.items():
            n, kind_stamps = send_burst(client, pub, items, confirm=kind == NOISE)
            sent += n
            stamps += kind_stamps
            time.sleep(0.5)
        time.sleep(1.0)
        after = counters(client, time.time())
        rss_after = target.resources()["rss_kb"]
        published = [r for r in client.received("depth") if r.stamp_ns in set(stamps)]
        after_ok = good_frames_answered(client, pub)
        alive, traceback = target.alive(), check_log(target)
    delta = {k: after[k] - before[k] for k in before}
    problems = []
    if not before_ok:
        problems.append("no output for good frames before the bursts")
    small = sum(len(v) for k, v in bursts.items() if k != NOISE)
    if delta["received"] < small + len(bursts[NOISE]):
        problems.append(f"{delta['received']} received of {sent} sent (each small one and one of each 50 MB "
                        "message must arrive)")
    if delta["invalid"] + delta["dropped"] != delta["received"]:
        problems.append(f"invalid {delta['invalid']} + dropped {delta['dropped']} != {delta['received']} received")
    if delta["invalid compressed"] != delta["invalid"]:
        problems.append(f"/diagnostics 'invalid compressed' +{delta['invalid compressed']} != invalid "
                        f"+{delta['invalid']}")
    if delta["errors"]:
        problems.append(f"{delta['errors']} counted as processing errors, not as invalid input")
    if delta["processed"] or published:
        problems.append(f"{delta['processed']} processed, {len(published)} published")
    if not after_ok or not alive:
        problems.append("node not answering good frames after" if alive else "node died")
    if traceback:
        problems.append(traceback)
    measured = (f"{sent} malformed sent ({', '.join(f'{len(v)} {k}' for k, v in bursts.items())}, 50 MB ones resent "
                f"until one arrived): received "
                f"{delta['received']}, invalid {delta['invalid']} ('invalid compressed' in /diagnostics "
                f"+{delta['invalid compressed']}), dropped {delta['dropped']}, errors {delta['errors']}, processed "
                f"{delta['processed']}; "
                f"RSS {rss_before / 1024:.0f} -> {rss_after / 1024:.0f} MB; good frames answered after: {after_ok}")
    if problems:
        measured += " | PROBLEMS: " + "; ".join(problems)
    return not problems, measured, {"delta": delta, "sent": sent}
