#!/usr/bin/env bash
# Make a Python venv look like an ament install prefix for meco_ros, so that tools which
# resolve packages through the ament index (launch_ros, ros2 run) find it:
#   share/ament_index/resource_index/packages/meco_ros, share/meco_ros/{package.xml,launch,config},
#   lib/meco_ros/perception_node.
set -euo pipefail
prefix=$(cd "${1:?usage: install_ament_prefix.sh VENV}" && pwd)
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$prefix/share/ament_index/resource_index/packages" "$prefix/share/meco_ros" "$prefix/lib/meco_ros"
: > "$prefix/share/ament_index/resource_index/packages/meco_ros"
cp "$root/package.xml" "$prefix/share/meco_ros/package.xml"
for d in launch config; do
  rm -rf "$prefix/share/meco_ros/$d"
  ln -s "$root/$d" "$prefix/share/meco_ros/$d"
done
if [ -d "$root/checkpoints" ]; then rm -rf "$prefix/share/meco_ros/checkpoints"; ln -s "$root/checkpoints" "$prefix/share/meco_ros/checkpoints"; fi
{
  echo "#!$prefix/bin/python"
  tail -n +2 "$root/tools/perception_node"
} > "$prefix/lib/meco_ros/perception_node"
chmod +x "$prefix/lib/meco_ros/perception_node"
echo "ament prefix ready: $prefix"
