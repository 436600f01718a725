"""meco_ros: the ROS 2 side of meco (rclpy node, image conversion) and its messages.

The generated message code (``meco_ros.msg``) is installed by tools/build_msgs.sh (or
colcon) as a ``meco_ros/`` directory in site-packages, apart from this source package
when it is pip-installed editable; extending ``__path__`` lets both halves import as one
package. With colcon both halves share one directory and this is a no-op.
"""
from pkgutil import extend_path

__path__ = extend_path(__path__, __name__)
