"""How closed-loop episodes are scored and reported, without ROS: an episode's result, its record in
results.json (success, mode sequence, wrong colours), the per-task summary with a 95% Wilson interval, the
success plot and the video of recorded episodes. rt-eval (rt_bringup.episodes.evaluate) runs the episodes."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

from rt_policy_node.policies.policy import Mode
from rt_sim.bag_video import write_video
from rt_sim.episode_video import episode_frames
from rt_sim.tasks.drive_to_marker import arrived_at
from rt_sim.tasks.pick_cube import cube_lifted

VIDEO_FPS = 3.0
Z_95 = 1.959964


@dataclass
class EpisodeResult:
    """What one episode did: the reset's episode (instruction, params), the actions, the final task state."""

    episode: dict[str, Any]
    modes: list[int]
    inference_ms: list[float]
    state: dict[str, Any]
    executed_terminated: bool = False  # a TERMINATE on EXECUTED_ACTIONS (what the robot followed)

    @property
    def terminated(self) -> bool:
        return bool(self.modes) and self.modes[-1] == Mode.TERMINATE

    @property
    def steps(self) -> int:
        return len(self.modes)


def wilson_interval(successes: int, trials: int, z: float = Z_95) -> tuple[float, float]:
    """The Wilson score interval for a binomial proportion: honest at small n and at 0% or 100%."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    # In exact arithmetic the interval holds p; in floating point its ends can miss p by an ulp (0.9999999999999999
    # at n/n), which would make an error bar negative.
    return min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))


MODE_NAMES = {Mode.TERMINATE: "terminate", Mode.ARM: "arm", Mode.BASE: "base"}
MISSION = "base>arm>terminate"


def mode_sequence(modes: list[int]) -> str:
    """The episode's modes with repeats collapsed, e.g. "base>arm>terminate" (table_pick done in order)."""
    return ">".join(MODE_NAMES.get(mode, str(mode)) for mode, _ in groupby(modes))


def mode_switches(modes: list[int]) -> int:
    """How often the policy changed between moving the base and moving the arm (TERMINATE not counted)."""
    moving = [m for m in modes if m != Mode.TERMINATE]
    return sum(a != b for a, b in pairwise(moving))


# Tasks with a colour to get wrong: the objects in the state that could be acted on, and whether one of a colour was.
ACTED_ON = {
    "pick_cube": ("cubes", cube_lifted),
    "drive_to_marker": ("markers", arrived_at),
}


def wrong_colours(task: str, state: dict[str, Any], params: dict[str, Any]) -> list[str]:
    """The colours the robot acted on that the instruction did not ask for: cubes held up (pick_cube), markers
    stopped at (drive_to_marker); empty for other tasks."""
    if task not in ACTED_ON:
        return []
    objects, acted_on = ACTED_ON[task]
    return sorted(c for c in state[objects] if c != params["colour"] and acted_on(state, c))


def episode_record(task: str, seed: int, result: EpisodeResult, template: str = "") -> dict[str, Any]:
    """One episode as it goes into results.json and the recorded bag's sidecar; the layout (where the base and
    every object started) is there to find what the failed episodes have in common, the mode sequence to see
    whether the policy switched between base and arm as the task needs. `template`: the --instructions template
    the instruction came from."""
    params = result.episode["params"]
    return {
        "task": task,
        "seed": seed,
        "instruction": result.episode["instruction"],
        **({"template": template} if template else {}),
        "params": params,
        "layout": result.episode["layout"],
        "success": bool(result.terminated and result.state["success"]),
        "task_success_at_end": bool(result.state["success"]),
        "terminated": result.terminated,
        "steps": result.steps,
        "mode_sequence": mode_sequence(result.modes),
        "mode_switches": mode_switches(result.modes),
        "mean_inference_ms": sum(result.inference_ms) / len(result.inference_ms) if result.inference_ms else 0.0,
        "wrong_colours": wrong_colours(task, result.state, params),
    }


def summarise(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-task figures over `episodes` (all of one task)."""
    n = len(episodes)
    successes = sum(e["success"] for e in episodes)
    low, high = wilson_interval(successes, n)
    summary = {
        "episodes": n,
        "successes": successes,
        "success_rate": successes / n if n else 0.0,
        "success_ci95": [low, high],
        "terminated_rate": sum(e["terminated"] for e in episodes) / n if n else 0.0,
        "mean_steps": sum(e["steps"] for e in episodes) / n if n else 0.0,
        "mean_inference_ms": sum(e["mean_inference_ms"] for e in episodes) / n if n else 0.0,
        "mean_mode_switches": sum(e["mode_switches"] for e in episodes) / n if n else 0.0,
        "mode_sequences": dict(Counter(e["mode_sequence"] for e in episodes).most_common()),
        "base_arm_terminate_rate": sum(e["mode_sequence"] == MISSION for e in episodes) / n if n else 0.0,
    }
    if episodes and episodes[0]["task"] in ACTED_ON:
        summary["wrong_colour_rate"] = sum(bool(e["wrong_colours"]) for e in episodes) / n
    templates = sorted({e["template"] for e in episodes if "template" in e})
    if templates:
        summary["templates"] = {t: _rate([e for e in episodes if e.get("template") == t]) for t in templates}
    return summary


def _rate(episodes: list[dict[str, Any]]) -> dict[str, Any]:
    successes = sum(e["success"] for e in episodes)
    return {"episodes": len(episodes), "successes": successes, "success_rate": successes / len(episodes)}


def plot_success(results: dict[str, Any], out: Path) -> None:
    """Bar plot of success per task with the 95% intervals as error bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = list(results["tasks"])
    rates = [results["tasks"][t]["success_rate"] for t in tasks]
    errors = [
        [r - results["tasks"][t]["success_ci95"][0] for t, r in zip(tasks, rates, strict=True)],
        [results["tasks"][t]["success_ci95"][1] - r for t, r in zip(tasks, rates, strict=True)],
    ]
    figure, axes = plt.subplots(figsize=(1.6 + 1.4 * len(tasks), 3.2))
    axes.bar(tasks, rates, yerr=errors, capsize=6, color="tab:blue")
    axes.set_ylim(0.0, 1.05)
    axes.set_ylabel("success rate (95% Wilson)")
    axes.set_title(f"{results['policy_name']}: seeds {results['seed']}+")
    figure.tight_layout()
    figure.savefig(out, dpi=100)
    plt.close(figure)


def render_video(directories: list[Path], out: Path, fps: float = VIDEO_FPS) -> int:
    """The recorded episodes one after another as one MP4 (rt_sim.episode_video: the third-person view beside the
    robot's camera, with instruction, mode and step); returns the frame count."""
    frames = [frame for directory in directories for frame in episode_frames(directory)]
    if frames:
        write_video(frames, out, fps)
    return len(frames)
