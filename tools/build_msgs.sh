#!/usr/bin/env bash
# Generate and build meco_ros's messages (msg/*.msg) for a venv's Python with the rosidl
# wheels from PyPI and Debian's cmake/gcc; no ROS install needed. On a machine with ROS 2,
# colcon builds the same messages from CMakeLists.txt instead.
#
#   bash tools/build_msgs.sh VENV
#
# Result: C/typesupport libraries in VENV/lib (on the library path the ros wheels' .pth
# hook sets), interface files in VENV/share, and the Python side (meco_ros/msg/ and the
# meco_ros_s__*.so extension modules) inside the directory the meco_ros package imports
# from: the source tree for an editable install, site-packages for a regular one. Putting
# them there (and never the generator's empty __init__.py) is what lets
# `from meco_ros.msg import Stats` and our own meco_ros modules import as one package.
# Re-running is a no-op when the inputs are unchanged.
set -euo pipefail

venv=$(cd "${1:?usage: build_msgs.sh VENV}" && pwd)
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
py="$venv/bin/python"
work="$venv/.build/meco_ros_msgs"
shopt -s nullglob
msgs=("$root"/msg/*.msg)
[ ${#msgs[@]} -gt 0 ] || { echo "build_msgs: no messages in $root/msg"; exit 0; }
export OMP_NUM_THREADS=1

apt_updated=0
apt_install() {  # install Debian packages only when a tool/header is missing
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo -n"
  command -v apt-get >/dev/null || { echo "build_msgs: missing $*, and no apt-get to install it" >&2; exit 1; }
  [ $apt_updated -eq 1 ] || { $sudo apt-get update -qq; apt_updated=1; }
  echo "build_msgs: apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}
for tool in cmake make gcc g++; do
  command -v "$tool" >/dev/null || apt_install cmake make gcc g++
done

# Where `import meco_ros` resolves (run outside the repo so cwd does not count).
pkg_dir=$(cd / && "$py" -c '
import importlib.util, os
s = importlib.util.find_spec("meco_ros")
print(os.path.dirname(s.origin) if s and s.origin and s.origin.endswith("__init__.py") else "")')
[ -n "$pkg_dir" ] || pkg_dir="$root/meco_ros"  # not installed yet: the editable target

inputs=$( { cat "${BASH_SOURCE[0]}" "$root/package.xml" "${msgs[@]}"; echo "$pkg_dir";
            "$py" -c 'import sys, numpy; print(sys.version, numpy.__version__)'; } | sha256sum | cut -d' ' -f1)
if [ -f "$work/stamp" ] && [ "$(cat "$work/stamp")" = "$inputs" ] \
   && [ -f "$pkg_dir/msg/__init__.py" ] && compgen -G "$pkg_dir/meco_ros_s__rosidl_typesupport_c*.so" >/dev/null \
   && [ -f "$venv/lib/libmeco_ros__rosidl_generator_py.so" ]; then
  echo "build_msgs: messages up to date ($pkg_dir/msg)"
  exit 0
fi

read -r py_include np_include py_ver < <("$py" -c '
import sysconfig, numpy, sys
print(sysconfig.get_paths()["include"], numpy.get_include(), "%d.%d" % sys.version_info[:2])')
if [ ! -f "$py_include/Python.h" ]; then
  case "$py_include" in
    /usr/include/*) apt_install "python$py_ver-dev" ;;
    *) echo "build_msgs: no Python.h in $py_include; install this Python's headers" >&2; exit 1 ;;
  esac
fi

# A throwaway ament package holding only the messages; dependencies are read off the
# .msg files (pkg/Type fields) so this stays in step with CMakeLists.txt.
deps=$(sed -e 's/#.*//' "${msgs[@]}" | grep -oE '^[[:space:]]*[a-z][a-z0-9_]*/[A-Z]' \
       | sed -E 's/^[[:space:]]*//; s#/.*##' | sort -u | tr '\n' ' ')
rm -rf "$work/src" "$work/py"
mkdir -p "$work/src/msg" "$work/build"
cp "${msgs[@]}" "$work/src/msg/"
cp "$root/package.xml" "$work/src/"
{
  echo "cmake_minimum_required(VERSION 3.20)"
  echo "project(meco_ros C CXX)"
  echo "find_package(ament_cmake REQUIRED)"
  echo "find_package(rosidl_default_generators REQUIRED)"
  echo "find_package(Python3 REQUIRED COMPONENTS Interpreter Development.Module NumPy)"
  for d in $deps; do echo "find_package($d REQUIRED)"; done
  echo "file(GLOB MSG_FILES RELATIVE \${CMAKE_CURRENT_SOURCE_DIR} msg/*.msg)"
  echo "rosidl_generate_interfaces(\${PROJECT_NAME} \${MSG_FILES} DEPENDENCIES $deps)"
  cat <<'EOF'
# The PyPI ROS wheels were built in a manylinux container: their exported
# *__rosidl_generator_py targets name /opt/python/... include directories that do not
# exist here. Point them at this Python's and numpy's headers (before generation, which
# is when CMake checks them).
get_property(_imported DIRECTORY PROPERTY IMPORTED_TARGETS)
foreach(_t IN LISTS _imported)
  if(_t MATCHES "__rosidl_generator_py$")
    set_property(TARGET ${_t} PROPERTY INTERFACE_INCLUDE_DIRECTORIES
      ${Python3_INCLUDE_DIRS} ${Python3_NumPy_INCLUDE_DIRS})
  endif()
endforeach()
ament_package()
EOF
} > "$work/src/CMakeLists.txt"

export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv"
cmake -S "$work/src" -B "$work/build" -Wno-dev --log-level=WARNING \
  -DCMAKE_BUILD_TYPE=Release -DBUILD_TESTING=OFF \
  -DCMAKE_INSTALL_PREFIX="$venv" -DPYTHON_INSTALL_DIR="$work/py" \
  -DPython3_EXECUTABLE="$py" -DPython3_INCLUDE_DIR="$py_include" \
  -DPython3_NumPy_INCLUDE_DIR="$np_include" >/dev/null
cmake --build "$work/build" -j 2 >"$work/build.log" 2>&1 \
  || { tail -n 40 "$work/build.log" >&2; echo "build_msgs: build failed, log: $work/build.log" >&2; exit 1; }
cmake --install "$work/build" >/dev/null

# Python side: msg/ and the extension modules, never the generated (empty) __init__.py.
mkdir -p "$pkg_dir"
rm -rf "$pkg_dir/msg" "$pkg_dir"/meco_ros_s__*.so
cp -r "$work/py/meco_ros/msg" "$pkg_dir/msg"
cp "$work/py/meco_ros"/meco_ros_s__*.so "$pkg_dir/"
rm -rf "$work/py"  # holds the generator's empty meco_ros/__init__.py: keep it off any path
echo "$inputs" > "$work/stamp"
echo "build_msgs: built $(basename -a "${msgs[@]}" | tr '\n' ' ')-> $pkg_dir/msg, $venv/lib"
