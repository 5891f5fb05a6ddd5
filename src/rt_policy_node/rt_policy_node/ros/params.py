"""Declares a node's parameter table (rt_policy_node.parameters) with descriptors: description, range, read-only."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from rt_policy_node.parameters import Parameter


def _descriptor(p: Parameter) -> ParameterDescriptor:
    """`p`'s description and read-only flag, and its bounds as a range (an integer range for an int default)."""
    descriptor = ParameterDescriptor(description=p.description, read_only=p.read_only)
    if p.low is not None and isinstance(p.default, int):
        descriptor.integer_range = [IntegerRange(from_value=int(p.low), to_value=int(p.high), step=1)]
    elif p.low is not None:
        descriptor.floating_point_range = [FloatingPointRange(from_value=float(p.low), to_value=float(p.high))]
    return descriptor


def declare_all(node: Node, parameters: tuple[Parameter, ...]) -> dict[str, Any]:
    """Declares every parameter of a node's table; returns name -> value (the default or the override)."""
    return {p.name: node.declare_parameter(p.name, p.default, _descriptor(p)).value for p in parameters}
