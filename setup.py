"""pip install of the two Python packages (meco_core, meco_ros) and their console scripts.

On a ROS 2 machine colcon builds this package through CMakeLists.txt (messages +
ament_python_install_package); here `make setup` pip-installs it into .venv.
"""
from setuptools import find_packages, setup

setup(
    name="meco",
    version="0.1.0",
    description="MECO: Mixture-of-Expert Codebooks depth + segmentation for a golf cart, with a ROS 2 node",
    packages=find_packages(include=["meco_core", "meco_core.*", "meco_ros", "meco_ros.*"]),
    python_requires=">=3.10",
    entry_points={
        "console_scripts": [
            "meco = meco_core.cli:main",
            "perception_node = meco_ros.node.perception_node:run",
        ],
        # meco subcommands that need ROS, registered from meco_ros (meco_core never imports it)
        "meco.commands": [
            "node_bench = meco_ros.commands.node_bench",
            "node_faults = meco_ros.commands.node_faults",
            "node_soak = meco_ros.commands.node_soak",
            "replay_eval = meco_ros.commands.replay_eval",
        ],
    },
)
