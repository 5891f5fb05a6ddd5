"""Declares ROS parameters with descriptors (description, range, read-only): one at a time or a node's table."""

from __future__ import annotations

from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from rt_policy_node.parameters import Parameter


def declare(
    node: Node,
    name: str,
    default: Any,
    description: str,
    *,
    low: float | None = None,
    high: float | None = None,
    read_only: bool = False,
) -> Any:
    """Declares `name` with `default`; `low`/`high` bound a number (an int default gives an integer range)."""
    descriptor = ParameterDescriptor(description=description, read_only=read_only)
    if low is not None and high is not None:
        if isinstance(default, bool) or not isinstance(default, int | float):
            raise TypeError(f"parameter {name!r}: a range needs a numeric default, got {default!r}")
        if isinstance(default, int):
            descriptor.integer_range = [IntegerRange(from_value=int(low), to_value=int(high), step=1)]
        else:
            descriptor.floating_point_range = [FloatingPointRange(from_value=float(low), to_value=float(high))]
    return node.declare_parameter(name, default, descriptor).value


def declare_all(node: Node, parameters: tuple[Parameter, ...]) -> dict[str, Any]:
    """Declares every parameter of a node's table; returns name -> value (the default or the override)."""
    return {
        p.name: declare(node, p.name, p.default, p.description, low=p.low, high=p.high, read_only=p.read_only)
        for p in parameters
    }
