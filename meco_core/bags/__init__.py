"""Rosbag I/O without ROS: ROS 1 bags and rosbag2 (sqlite3, mcap) through `rosbags`.

- reader: open any bag, list and read topics, decode images/clouds/camera_info/TF
  (`open_bag`, `BagWriter`, `rgb_from_msg`, ...; importable from `meco_core.bags` directly);
- messages: ROS message <-> numpy builders and parsers shared by readers and writers;
- salvage: reading what is left of a damaged bag;
- to_dataset: bag (camera + lidar or depth) -> meco-dataset/1 (`meco data from-bag`);
- from_dataset: meco-dataset/1 -> bag for replay tests and the demo (`meco data make-bag`).
"""
from .messages import *  # noqa: F401,F403
from .reader import *  # noqa: F401,F403
