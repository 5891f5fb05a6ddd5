"""Robotics Transformer policies (RT-1, RT-2-style VLA) and the ROS 2 nodes that run them."""
