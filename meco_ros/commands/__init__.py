"""`meco` subcommands that need ROS (replay-eval, node-bench). They reach the `meco` CLI
through the `meco.commands` entry-point group (setup.py), so the model library's CLI never
imports meco_ros: the layers point one way."""
