"""The benchmarks' camera: a process of its own publishing real-looking frames best effort at a
fixed rate (`python -m meco_ros.bench.bench_camera --topic ... --rate 60 --size 480x640`),
printing a JSON summary with every stamp sent; and the CameraInfo it (and the fault cases'
cameras) publish.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

import numpy as np

from meco_ros.proc import REPO

CAMERA_MATCH_TIMEOUT_S = 30.0  # the node's subscription must match within this, else exit 2


def camera_frames(h: int, w: int, encoding: str, n: int = 24) -> list[np.ndarray]:
    """CamVid validation images resized to h x w (real textures and layouts), else synthetic."""
    import cv2

    from meco_core.image_codec import convert_encoding

    paths = sorted((REPO.parent / "shared" / "data" / "camvid" / "val").glob("*.png"))[:n]
    frames = []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is not None:
            frames.append(cv2.cvtColor(cv2.resize(bgr, (w, h), interpolation=cv2.INTER_AREA), cv2.COLOR_BGR2RGB))
    if not frames:  # synthetic: sky, horizon, fairway gradient, a moving post
        y, x = np.mgrid[0:h, 0:w]
        for i in range(n):
            img = np.zeros((h, w, 3), np.uint8)
            img[..., 0] = np.where(y < h // 3, 120, 40)
            img[..., 1] = np.where(y < h // 3, 170, 80 + (y * 120 // h))
            img[..., 2] = np.where(y < h // 3, 230, 50)
            x0 = (i * w // n) % w
            img[h // 3: h - h // 6, x0: x0 + max(w // 40, 2)] = (200, 30, 40)
            frames.append(img)
    return [np.ascontiguousarray(convert_encoding(f, "rgb8", encoding)) for f in frames]


def camera_main(argv: list[str]) -> int:
    """Publish frames best effort at a fixed rate; print a JSON summary with every stamp sent."""
    ap = argparse.ArgumentParser(prog="python -m meco_ros.bench.bench_camera")
    ap.add_argument("--topic", required=True)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--size", default="480x640")
    ap.add_argument("--encoding", default="rgb8")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--match-timeout", type=float, default=CAMERA_MATCH_TIMEOUT_S)
    ap.add_argument("--camera-info", default="",
                    help="also publish sensor_msgs/CameraInfo (the default camera for the size) on this topic, "
                         "one per frame with the frame's stamp (the node's clouds need it); '' = none")
    args = ap.parse_args(argv)
    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from meco_ros.image_conversion import cv2_to_imgmsg

    h, w = (int(v) for v in args.size.split("x"))
    rclpy.init()
    node = rclpy.create_node("meco_bench_camera")
    pub = node.create_publisher(Image, args.topic, qos_profile_sensor_data)
    msgs = []
    for img in camera_frames(h, w, args.encoding):
        m = cv2_to_imgmsg(img, args.encoding)
        m.header.frame_id = "camera"
        msgs.append(m)
    info_pub, info = None, None
    if args.camera_info:
        info_pub = node.create_publisher(CameraInfo, args.camera_info, qos_profile_sensor_data)
        info = camera_info_msg(h, w)
    deadline = time.monotonic() + args.match_timeout
    while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if pub.get_subscription_count() == 0:
        print(json.dumps({"error": f"no subscriber on {args.topic} within {args.match_timeout} s"}), flush=True)
        return 2
    time.sleep(0.5)  # let the reader side finish matching
    stamps, late = [], 0
    period, n = 1.0 / args.rate, int(round(args.duration * args.rate))
    t0 = time.monotonic()
    for i in range(n):
        target = t0 + i * period
        wait = target - time.monotonic()
        if wait > 0:
            time.sleep(wait)
        elif wait < -period:
            late += 1
        msg = msgs[i % len(msgs)]
        msg.header.stamp = node.get_clock().now().to_msg()
        if info_pub is not None:
            info.header.stamp = msg.header.stamp
            info_pub.publish(info)
        pub.publish(msg)
        stamps.append([msg.header.stamp.sec, msg.header.stamp.nanosec])
    elapsed = time.monotonic() - t0
    time.sleep(0.5)
    print(json.dumps({"sent": n, "late": late, "rate": n / elapsed if elapsed else 0.0, "stamps": stamps}),
          flush=True)
    return 0  # no DDS teardown: the process ends through exit_without_dds_teardown (below)


def camera_info_msg(h: int, w: int, frame_id: str = "camera") -> Any:
    """CameraInfo of the default camera (meco_core.camera.default_intrinsics) for h x w."""
    from sensor_msgs.msg import CameraInfo

    from meco_core.camera import default_intrinsics

    fx, fy, cx, cy = default_intrinsics(h, w)
    info = CameraInfo(height=h, width=w, distortion_model="plumb_bob", d=[0.0] * 5)
    info.k = [fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    info.header.frame_id = frame_id
    return info


if __name__ == "__main__":
    from meco_ros.node.process_guards import exit_without_dds_teardown

    # Why not rclpy.try_shutdown(): Fast DDS 3.2.2 can block forever destroying a participant
    # whose peer (the node) is alive; a camera stuck there once failed a node-soak run.
    exit_without_dds_teardown(camera_main(sys.argv[1:]))
