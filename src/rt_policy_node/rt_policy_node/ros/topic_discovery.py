"""Subscribing topics as their publishers appear, serialized, with a QoS every publisher matches (as `ros2 bag
record` does): a topic with no publisher yet has no type to subscribe with."""

from __future__ import annotations

import importlib
from collections.abc import Callable

from ament_index_python.packages import PackageNotFoundError
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from rclpy.subscription import MessageInfo

# Raw callback: (topic, type name, serialized message, message info).
RawCallback = Callable[[str, str, bytes, MessageInfo], None]


def message_class(type_name: str) -> type:
    """'pkg/msg/Type' -> the generated Python class."""
    package, kind, name = type_name.split("/")
    return getattr(importlib.import_module(f"{package}.{kind}"), name)


def publishers_qos(infos: list, depth: int) -> QoSProfile:
    """Reliable / transient local only when every publisher offers it, so the subscription matches them all."""
    reliable = all(i.qos_profile.reliability == ReliabilityPolicy.RELIABLE for i in infos)
    latched = all(i.qos_profile.durability == DurabilityPolicy.TRANSIENT_LOCAL for i in infos)
    return QoSProfile(
        history=HistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=ReliabilityPolicy.RELIABLE if reliable else ReliabilityPolicy.BEST_EFFORT,
        durability=DurabilityPolicy.TRANSIENT_LOCAL if latched else DurabilityPolicy.VOLATILE,
    )


class TopicDiscovery:
    """Subscribes each of `topics` (resolved names) on `node` once a publisher shows up, every `period_s`.

    `prepare(type_name)` runs before a type's first subscription (e.g. to register it with a bag writer); an
    ImportError, FileNotFoundError or PackageNotFoundError from it leaves the topic unrecorded, logged once.
    """

    def __init__(
        self,
        node: Node,
        topics: set[str],
        depth: int,
        callback: RawCallback,
        prepare: Callable[[str], None],
        period_s: float = 0.5,
    ) -> None:
        self.node, self.pending, self.depth = node, set(topics), depth
        self.callback, self.prepare = callback, prepare
        node.create_timer(period_s, self.discover)

    def subscribe(self, topic: str, type_name: str, qos: QoSProfile) -> None:
        """Subscribes `topic` now, with a known type and QoS."""
        self.pending.discard(topic)
        self.node.create_subscription(
            message_class(type_name),
            topic,
            lambda data, info: self.callback(topic, type_name, data, info),
            qos,
            raw=True,
        )
        self.node.get_logger().info(f"subscribed {topic} ({type_name})")

    def discover(self) -> None:
        """Subscribes each pending topic that has a publisher."""
        for topic in sorted(self.pending):
            infos = self.node.get_publishers_info_by_topic(topic)
            if not infos:
                continue
            type_name = infos[0].topic_type
            if any(i.topic_type != type_name for i in infos):
                self.node.get_logger().warning(f"{topic} has publishers of several types; recording {type_name}")
            try:
                self.prepare(type_name)
                message_class(type_name)
            except (FileNotFoundError, PackageNotFoundError, ImportError) as err:
                self.node.get_logger().error(f"cannot record {topic} ({type_name}): {err}", once=True)
                continue
            self.subscribe(topic, type_name, publishers_qos(infos, self.depth))
