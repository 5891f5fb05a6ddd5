"""rt_episode_recorder: records every episode's topics into its own rosbag2 (MCAP) directory.

An episode runs from an instruction on rt/instruction to a TERMINATE action on rt/action, the next
instruction, `episode_timeout_s`, a `~/stop_episode` request, or shutdown (SIGINT/SIGTERM close the bag
properly). Messages are taken serialized (no decode, no re-encode) and written as received; each topic is
subscribed once a publisher appears, with the publishers' reliability and durability, like `ros2 bag
record`. The layout on disk is described in `rt_policy_node.data.bag_io`.

Which message goes into which episode (held messages that overtook their instruction, the frame before it) is
decided by the ROS-free `rt_policy_node.data.episode_segmenter`; this node subscribes, converts and reports.

The open bag goes to the OS every `flush_period_s`, so a SIGKILL, OOM kill or crash loses about that much at
most (`fsync: true` extends that to a power cut); at start-up the recorder recovers the episodes such a kill
left in its output_dir (`bag_io.recover_episode`) and logs what it did.
"""

from __future__ import annotations

from pathlib import Path

from ament_index_python.packages import get_package_share_directory
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rclpy.qos import QoSProfile
from rclpy.serialization import deserialize_message
from rclpy.subscription import MessageInfo
from std_msgs.msg import String
from std_srvs.srv import Trigger

from rt_msgs.msg import RTAction
from rt_policy_node.data.bag_io import EpisodeInfo, Recovery, make_typestore, recover_unfinished
from rt_policy_node.data.bag_io import register_package_types as register_types
from rt_policy_node.data.episode_segmenter import INSTRUCTION_TYPE, EpisodeSegmenter
from rt_policy_node.instructions import validate_instruction
from rt_policy_node.parameters import Parameter
from rt_policy_node.ros.node_main import run_node
from rt_policy_node.ros.params import declare_all
from rt_policy_node.ros.qos import LATCHED
from rt_policy_node.ros.topic_discovery import TopicDiscovery

ACTION_TYPE = "rt_msgs/msg/RTAction"

PARAMETERS = (
    Parameter("output_dir", "episodes", "Directory episodes are written into", read_only=True),
    Parameter(
        "topics",
        [
            "camera/image_raw",
            "rt/instruction",
            "rt/action",
            "rt/action_executed",
            "rt/status",
            "joint_states",
            "odom",
            "cmd_vel",
            "arm_controller/joint_trajectory",
            "gripper_controller/joint_trajectory",
            "sim/success",
            "scene_camera/image_raw",
        ],
        "Topics to record (relative names remap)",
        read_only=True,
    ),
    Parameter(
        "state_topics",
        ["camera/image_raw", "joint_states", "odom"],
        "Recorded topics whose newest message from before the instruction opens the episode",
        read_only=True,
    ),
    Parameter("episode_timeout_s", 300.0, "An episode longer than this is closed (0: never)", low=0.0, high=1e6),
    Parameter(
        "max_instruction_length",
        1000,
        "Longer instructions start no episode (as rt_policy)",
        low=1,
        high=100_000,
        read_only=True,
    ),
    Parameter(
        "queue_depth",
        200,
        "Per topic: the subscription queue (how far writing may lag) and what is held for a late instruction",
        low=1,
        high=100_000,
        read_only=True,
    ),
    Parameter(
        "flush_period_s",
        0.1,
        "How often the open bag goes to the OS: what a killed recorder can lose (0: when chunks fill)",
        low=0.0,
        high=60.0,
        read_only=True,
    ),
    Parameter("fsync", False, "Also fsync at each flush: survive a power cut", read_only=True),
)


class EpisodeRecorder(Node):
    """Subscribes the configured topics and writes each episode's messages to its own bag."""

    def __init__(self) -> None:
        super().__init__("rt_episode_recorder")
        self.segmenter: EpisodeSegmenter | None = None  # first: destroy_node reads it, even on a half-built node
        p = declare_all(self, PARAMETERS)
        self.output_dir = Path(p["output_dir"]).expanduser()
        self.max_instruction_length = p["max_instruction_length"]
        self.depth = p["queue_depth"]
        self.fsync = p["fsync"]
        self.output_dir.mkdir(parents=True, exist_ok=True)
        self.recover_unfinished()
        clock_kind = "sim" if self.get_parameter("use_sim_time").value else "wall"
        resolve = self.resolve_topic_name
        recorded = {resolve(t) for t in p["topics"]}
        self.instruction_topic, action_topic = resolve("rt/instruction"), resolve("rt/action")
        typestore = make_typestore({"rt_msgs": get_package_share_directory("rt_msgs")})
        state_topics = {resolve(t) for t in p["state_topics"]}
        self.segmenter = EpisodeSegmenter(
            self.output_dir,
            typestore,
            clock_kind,
            recorded,
            state_topics,
            self.instruction_topic,
            action_topic,
            self.depth,
            is_terminate=lambda data: deserialize_message(data, RTAction).mode == RTAction.TERMINATE,
            on_closed=self.on_episode_closed,
        )
        self.discovery = TopicDiscovery(self, recorded, self.depth, self.on_message, self.register_type)
        self.discovery.subscribe(
            self.instruction_topic, INSTRUCTION_TYPE, QoSProfile(depth=10, durability=LATCHED.durability)
        )
        self.discovery.subscribe(action_topic, ACTION_TYPE, QoSProfile(depth=self.depth))
        self.saved_pub = self.create_publisher(
            String, "~/episode_saved", QoSProfile(depth=10, durability=LATCHED.durability)
        )
        self.create_service(Trigger, "~/stop_episode", self.on_stop_episode)
        self.create_timer(1.0, self.on_timeout_check)
        if p["flush_period_s"] > 0:  # on the steady clock: a kill costs wall time, whatever sim time does
            self.create_timer(p["flush_period_s"], self.on_flush, clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.discovery.discover()
        self.get_logger().info(f"recording episodes into {self.output_dir.resolve()} ({clock_kind} time)")

    def recover_unfinished(self) -> None:
        """Recovers the episodes a killed recorder left in output_dir (see `bag_io.recover_episode`)."""
        for directory, outcome in recover_unfinished(self.output_dir):
            if not isinstance(outcome, Recovery):
                self.get_logger().error(f"cannot recover {directory}: {outcome}")
            else:
                (self.get_logger().warning if outcome.status == "recovered" else self.get_logger().info)(
                    outcome.describe()
                )

    def register_type(self, type_name: str) -> None:
        """Makes a type's definition known to the bag writer, from its package's installed .msg files."""
        typestore = self.segmenter.typestore
        if type_name not in typestore.fielddefs:
            package = type_name.split("/")[0]
            register_types(typestore, package, get_package_share_directory(package))

    # -- messages ---------------------------------------------------------------------------------

    def on_message(self, topic: str, msgtype: str, data: bytes, info: MessageInfo) -> None:
        now = self.get_clock().now().nanoseconds
        if topic != self.instruction_topic:
            self.segmenter.message(topic, msgtype, data, info["source_timestamp"], now)
            return
        try:
            instruction = validate_instruction(deserialize_message(data, String).data, self.max_instruction_length)
        except ValueError as err:
            self.get_logger().warning(f"ignoring instruction (no new episode): {err}")
            return
        episode = self.segmenter.instruction(instruction, data, info["source_timestamp"], now)
        self.get_logger().info(f"episode {episode.info.episode_id}: {instruction!r}")

    def on_episode_closed(self, directory: Path, info: EpisodeInfo) -> None:
        counts = ", ".join(f"{topic} {count}" for topic, count in sorted(info.message_counts.items()))
        self.get_logger().info(f"episode {info.episode_id} closed ({info.outcome}): {counts}")
        if self.context.ok():
            self.saved_pub.publish(String(data=str(directory.resolve())))

    # -- episode ends -----------------------------------------------------------------------------

    def on_stop_episode(self, request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        directory = self.segmenter.close("stopped", self.get_clock().now().nanoseconds)
        response.success = directory is not None
        response.message = str(directory.resolve()) if directory else "no episode is being recorded"
        return response

    def on_flush(self) -> None:
        if self.segmenter.episode is not None:
            self.segmenter.episode.flush(sync=self.fsync)

    def on_timeout_check(self) -> None:
        self.segmenter.timed_out(self.get_clock().now().nanoseconds, self.get_parameter("episode_timeout_s").value)

    def destroy_node(self) -> None:
        if self.segmenter is not None:
            self.segmenter.close("shutdown", self.get_clock().now().nanoseconds)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    return run_node(EpisodeRecorder, args)
