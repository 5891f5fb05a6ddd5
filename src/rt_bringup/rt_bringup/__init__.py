"""Launch helpers of the Robotics Transformer suite."""
