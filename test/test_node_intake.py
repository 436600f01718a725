"""Camera frames taken on demand (meco_ros/node/intake.py): frames DDS replaced while every
worker was busy never reach Python, and are still counted, received and dropped."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from meco_ros.node.intake import MAX_PUBLISHERS, SequenceGaps, arrival_monotonic
from meco_ros.node.worker import Mailbox


def _info(seq: int | None, gid: bytes = b"camera-1") -> dict:
    return {"publication_sequence_number": seq, "publisher_gid": {"data": gid}}


def test_sequence_gaps_count_what_a_publisher_sent_and_this_reader_never_took():
    gaps = SequenceGaps()
    assert [gaps.account(_info(s)) for s in (1, 2, 5, 6, 10)] == [(1, 0), (1, 0), (3, 2), (1, 0), (4, 3)]
    assert gaps.account(_info(1, b"camera-2")) == (1, 0)  # a restarted camera: a new publisher at 1
    assert gaps.account(_info(4, b"camera-2")) == (3, 2)
    assert gaps.account(_info(12)) == (2, 1)  # the first camera's count was kept
    # two threads take frames: 14 counted before 13 (presumed missed), then 13 arrives late
    assert gaps.account(_info(14)) == (2, 1) and gaps.account(_info(13)) == (0, -1)
    assert gaps.account(_info(13)) == (1, 0)  # the same one again: itself only, never undone twice
    assert gaps.account(_info(14 + 10**6)) == (1, 0)  # a jump no drops explain: counted from there
    assert gaps.account(_info(16 + 10**6)) == (2, 1)
    for info in (_info(None), {}, None):  # no sequence numbers: each frame counts itself
        assert gaps.account(info) == (1, 0)
    for i in range(MAX_PUBLISHERS + 5):  # many restarts: memory stays bounded
        gaps.account(_info(1, f"restart-{i}".encode()))
    assert len(gaps._publishers) == MAX_PUBLISHERS


def test_sequence_gaps_add_up_whatever_order_two_threads_count_in():
    """Frames 1..N taken by two threads, each counting some of its frames after the other
    counted newer ones: the totals are those of N frames received, the untaken ones dropped."""
    rng = np.random.default_rng(0)
    taken = sorted(rng.choice(np.arange(2, 2000), 700, replace=False).tolist()) + [2000]
    order = taken[:]
    for i in range(0, len(order) - 1, 3):  # swap neighbours: one counted after a newer one
        order[i], order[i + 1] = order[i + 1], order[i]
    gaps = SequenceGaps()
    received = dropped = 0
    for seq in [1] + order:
        r, d = gaps.account(_info(seq))
        received, dropped = received + r, dropped + d
    assert received == 2000 and dropped == 2000 - 1 - len(taken)


def test_arrival_time_is_when_dds_received_the_frame():
    now_ns = time.time_ns()
    age = time.monotonic() - arrival_monotonic({"received_timestamp": now_ns - 50_000_000})
    assert 0.049 < age < 0.2
    for info in (None, {}, {"received_timestamp": 0}, {"received_timestamp": now_ns + 10**12}):
        assert abs(arrival_monotonic(info) - time.monotonic()) < 0.05  # unknown or absurd: now


def test_a_hungry_mailbox_asks_once_per_wait_and_may_be_filled_by_the_asker():
    asked: list[bool] = []
    box: Mailbox[int] = Mailbox(on_hungry=lambda: (asked.append(box.hungry), box.put(7)))
    assert not box.hungry
    assert box.get(1.0) == 7 and asked == [True]  # filled from inside the call: no wait
    box.put(8)
    assert box.get(1.0) == 8 and asked == [True]  # a frame was waiting: nobody asked
    quiet: Mailbox[int] = Mailbox(on_hungry=lambda: asked.append(quiet.hungry))
    threading.Timer(0.1, quiet.put, (9,)).start()
    assert quiet.get(2.0) == 9 and asked[-1] is True and not quiet.hungry


class _TakeFails:
    """A subscription whose take raises (an rclpy that renamed the call, say)."""

    @property
    def handle(self):
        raise RuntimeError("take is not available")


@pytest.mark.parametrize("depth,take_fails", [(1, False), (4, False), (1, True)])
def test_a_camera_faster_than_the_node_reaches_python_only_when_a_worker_is_free(depth, take_fails):
    """The real node (random-weight dev model) and a 300 Hz camera in one process over DDS:
    with the default KEEP_LAST 1 input the node's image callback runs for fewer frames than
    were sent; with a deeper input queue (no gate: its oldest frame would be handed over)
    the executor takes frames as they come. Either way every frame sent is counted received,
    and each one received is processed, dropped or invalid. A take on the worker's thread
    that fails hands the job to the executor, logged, and the node carries on."""
    import rclpy
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image

    from meco_core.defaults import DEV_MODEL_CONFIG
    from meco_ros.image_conversion import cv2_to_imgmsg
    from meco_ros.node.perception_node import PerceptionNode
    from meco_ros.proc import REPO

    context = rclpy.Context()
    rclpy.init(context=context)  # this test run's ROS_DOMAIN_ID (conftest)
    node = camera = executor = None
    try:
        node = PerceptionNode(context=context, cli_args=[
            "--ros-args", "--params-file", str(REPO / "config" / "golf_cart.yaml"), "-p", "checkpoint:=''",
            "-p", "model:=meco", "-p", f"model_config:={DEV_MODEL_CONFIG}", "-p", "inference_size:=[64,96]",
            "-p", "threads:=1", "-p", "warmup_iterations:=1", "-p", "backend:=torch",
            "-p", "topics.image:=/intake_test/image", "-p", "topics.camera_info:=''",
            "-p", f"qos.input.depth:={depth}"])
        taken = []
        node.trigger_configure()
        on_image = node.intake.on_image  # counted here: the frames that reached Python
        node.intake.on_image = lambda msg, info: (taken.append(info["publication_sequence_number"]),
                                                  on_image(msg, info))
        node.trigger_activate()
        if take_fails:
            node.intake.subscriptions = [_TakeFails()]
        camera = rclpy.create_node("intake_test_camera", context=context)
        pub = camera.create_publisher(Image, "/intake_test/image", qos_profile_sensor_data)
        depths = []  # a client of the depth output: outputs nobody reads are not computed
        camera.create_subscription(Image, "/depth", depths.append, qos_profile_sensor_data)
        executor = SingleThreadedExecutor(context=context)
        executor.add_node(node)
        executor.add_node(camera)
        spinner = threading.Thread(target=executor.spin, daemon=True)
        spinner.start()
        deadline = time.monotonic() + 10
        while pub.get_subscription_count() == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pub.get_subscription_count() == 1, "the node never subscribed"
        msg = cv2_to_imgmsg(np.full((96, 128, 3), 90, np.uint8), "rgb8")
        sent = 0
        # Frames sent before the node's reader is connected never reach it (discovery and the
        # shared-memory segment come up in their own time), and the counter rightly starts at
        # the first frame taken: a node started after its camera does not count the camera's
        # past as drops. So the camera first sends until one frame got through.
        deadline = time.monotonic() + 10
        while not taken and time.monotonic() < deadline:
            msg.header.stamp = camera.get_clock().now().to_msg()
            pub.publish(msg)
            sent += 1
            time.sleep(0.02)
        assert taken, "no frame reached the node"
        t0 = time.monotonic()
        burst_start = sent
        while time.monotonic() - t0 < 2.0:  # 300 Hz
            msg.header.stamp = camera.get_clock().now().to_msg()
            pub.publish(msg)
            sent += 1
            time.sleep(max(0.0, t0 + (sent - burst_start) / 300 - time.monotonic()))
        expected = sent - (taken[0] - 1)  # counted from the first frame that got through
        s = node.stats
        accounted = lambda: s.processed + s.dropped + s.stale + s.invalid + s.skipped + s.errors  # noqa: E731
        deadline = time.monotonic() + 10
        while (s.received < expected or accounted() < s.received) and time.monotonic() < deadline:
            time.sleep(0.05)  # the last frames finish
        assert s.processed > 10 and depths, "the node processed almost nothing"
        if depth == 1:
            assert len(taken) < sent / 2, "most frames reached Python: DDS should have replaced them"
        if take_fails:
            assert node.intake.subscriptions == [], "the failing take was not given up"
        assert taken == sorted(taken), "frames were taken out of order"
        assert s.received == expected, (s.received, sent, taken[0])  # the frames DDS replaced are counted too
        assert s.received == accounted(), vars(s)
        assert s.dropped >= expected - len(taken)
    finally:
        if executor is not None:
            executor.shutdown(timeout_sec=2)
        if node is not None:
            node.trigger_deactivate()
            node.close()
            node.destroy_node()
        if camera is not None:
            camera.destroy_node()
        rclpy.shutdown(context=context)
