"""The simulation tests: ROS-free physics checks, and node processes driven with tests/ros's harness."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros"))
