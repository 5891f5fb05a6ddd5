"""The bringup tests drive real node processes with the ROS test harness of tests/ros."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros"))
