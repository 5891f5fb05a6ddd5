"""Test-wide settings: an isolated DDS domain per test session, discovery kept on this machine."""

import os
import random

# Concurrent test runs on one machine must not hear each other's topics.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("MUJOCO_GL", "egl")
