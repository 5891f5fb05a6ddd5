"""Where did a pick_cube policy close its gripper: at the asked cube, at another cube, or at none? From rt-eval's bags.

For every pick_cube episode under EVAL_DIR/episodes/, the first recorded action that closes the gripper
(gripper_closedness > 0) is found, and the tool centre point at that moment (forward kinematics of the
recorded joint_states, in the base frame the recorded base joints give) is compared with where each cube started
(the task's seeded layout). A close within `--near-mm` (horizontal) of the asked cube is a reach of the right
cube, whatever the grasp then did; one near another cube is a reach of the wrong one; the rest reached no cube.
It tells a policy that cannot find the asked cube from one that finds it and grasps imprecisely, which the
success rate alone does not. For scale: the expert closes within 5 mm of the cube's start; a policy's grasps that
held closed up to ~30 mm off it (the fingers open 80 mm wide). It also gives how high above the cube's centre the
fingers closed (the expert: about 12 mm) and how far their closing axis was turned from the nearest pair of the
asked cube's faces (the expert turns the wrist to 0 degrees; at 45 the fingers meet the cube's edges).

Run: scripts/with_env.sh python benchmarks/pick_reach.py EVAL_DIR [--near-mm 40]
(EVAL_DIR from `rt-eval --task pick_cube --out EVAL_DIR`.)
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
from rosbags.highlevel import AnyReader

from rt_policy_node.robot.kinematics import ArmKinematics
from rt_sim.expert import grasp_heading
from rt_sim.geometry import world_to_base
from rt_sim.robot_model import ARM_JOINTS, BASE_JOINTS, urdf_path
from rt_sim.scene import CUBE_SIZE, TABLE_HEIGHT
from rt_sim.tasks import make_task


def first_close(bag: Path) -> dict[str, float] | None:
    """Joint positions (by name) at the first action that closes the gripper, or None if none did."""
    joints: dict[str, float] = {}
    with AnyReader([bag]) as reader:
        topics = [c for c in reader.connections if c.topic in ("/joint_states", "/rt/action")]
        for connection, _, raw in reader.messages(connections=topics):
            msg = reader.deserialize(raw, connection.msgtype)
            if connection.topic == "/joint_states":
                joints.update(zip(msg.name, msg.position, strict=True))
            elif msg.gripper_closedness > 0 and joints:
                return joints
    return None


def heading_error_deg(tool_rotation: np.ndarray, base_yaw: float, cube_yaw: float) -> float:
    """Degrees between the tool's closing axis (its y) and the nearest top-down grasp heading of a cube, in -45..45."""
    closing_axis = tool_rotation[:, 1]
    tool_heading = math.atan2(closing_axis[1], closing_axis[0])
    grasp = grasp_heading({"base": (0.0, 0.0, base_yaw), "cubes": {"cube": {"yaw": cube_yaw}}}, "cube")
    return math.degrees((tool_heading - grasp + math.pi / 4) % (math.pi / 2) - math.pi / 4)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("eval_dir", type=Path, help="an rt-eval --out directory with pick_cube episodes")
    parser.add_argument("--near-mm", type=float, default=40.0, help="horizontal distance that counts as at a cube")
    args = parser.parse_args()

    task = make_task("pick_cube")
    kinematics = ArmKinematics(urdf_path(), ARM_JOINTS, "base_link", "ee_link")
    outcomes: Counter[str] = Counter()
    reached_mm, height_mm, heading_deg = [], [], []
    for sidecar in sorted(args.eval_dir.glob("episodes/*/episode.json")):
        extra = json.loads(sidecar.read_text())["extra"]
        if extra.get("task") != "pick_cube":
            continue
        asked = extra["params"]["colour"]
        joints = first_close(sidecar.parent)
        if joints is None:
            outcomes["never closed"] += 1
            print(f"seed {extra['seed']} {asked}: never closed the gripper")
            continue
        base = [joints[name] for name in BASE_JOINTS]
        pose = kinematics.fk(np.array([joints[name] for name in ARM_JOINTS]))
        tcp = pose.translation
        cubes = task.episode(extra["seed"]).layout.cubes
        heading = heading_error_deg(pose.rotation, base[2], cubes[asked][2])
        heading_deg.append(abs(heading))
        height = 1000 * (tcp[2] - (TABLE_HEIGHT + CUBE_SIZE / 2))
        height_mm.append(height)
        distance_mm = {
            colour: 1000 * float(np.linalg.norm(world_to_base(base, (x, y))[:2] - tcp[:2]))
            for colour, (x, y, _) in cubes.items()
        }
        nearest = min(distance_mm, key=distance_mm.get)
        if distance_mm[asked] <= args.near_mm:
            outcome = "at the asked cube"
            reached_mm.append(distance_mm[asked])
        elif distance_mm[nearest] <= args.near_mm:
            outcome = "at another cube"
        else:
            outcome = "at no cube"
        outcomes[outcome] += 1
        print(
            f"seed {extra['seed']} {asked}: closed {outcome}, {distance_mm[asked]:.0f} mm from the {asked} cube "
            f"(nearest: {nearest}, {distance_mm[nearest]:.0f} mm), {height:.0f} mm above its centre, "
            f"wrist {heading:+.0f} deg off its faces; success {extra['success']}"
        )
    total = sum(outcomes.values())
    if not total:
        raise SystemExit(f"{args.eval_dir}: no pick_cube episodes under episodes/")
    summary = ", ".join(f"{name} {count}/{total}" for name, count in outcomes.most_common())
    print(f"first close: {summary}")
    if reached_mm:
        print(f"at the asked cube: median {np.median(reached_mm):.0f} mm from its start")
    if height_mm:
        print(f"fingers at the first close: median {np.median(height_mm):.0f} mm above the asked cube's centre")
        print(f"wrist at the first close: median {np.median(heading_deg):.0f} deg off the asked cube's faces")


if __name__ == "__main__":
    main()
