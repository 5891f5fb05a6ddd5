"""Gazebo (gz-sim) bringup of the Robotics Transformer suite."""
