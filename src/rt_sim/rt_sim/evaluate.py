"""rt-eval: closed-loop success of a policy (or the scripted expert) in the simulator, on held-out seeds.

    rt-eval --policy models/rt1_sim --task pick_cube drive_to_marker --episodes 50 --out out/eval/rt1_sim
    rt-eval --policy expert --task pick_cube --episodes 50 --out out/eval/expert

Starts the sim (lockstep), the executor, the controller (rt_policy with `policy_path`, or rt_expert for
`--policy expert`) and the episode recorder as processes on sim time (rt_sim.episode_runner, shared with
rt-collect). Episode i of each task uses seed `--seed + i`; the default 100000 keeps evaluation layouts
disjoint from collection seeds (the shipped model's data used 0-59 and 1000-1059). An episode ends on the
controller's TERMINATE or the task's step budget; it succeeds when it terminated and the task's success
holds in sim/task_state's privileged state. Writes `<out>/results.json` (per task: success rate with a 95%
Wilson interval, mean steps, mean inference ms, wrong-colour rate for pick_cube and drive_to_marker; every
episode with its layout, instruction and mode sequence), `<out>/success.png` and `<out>/episodes.mp4` (the first
`--video` episodes of each task from their bags: the sim's third-person view beside the robot's camera, with the
instruction, mode and step). With `--instructions FILE` each episode says one of the user's templates instead of
the task's own wording, and the results give the success per template.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections import Counter
from itertools import groupby, pairwise
from pathlib import Path
from typing import Any

from rt_policy_node.policies.policy import Mode
from rt_sim.bag_video import write_video
from rt_sim.episode_runner import (
    EpisodeResult,
    NodeSpec,
    add_sim_arguments,
    closed_episodes,
    episode_session,
    mark_episode,
    policy_node,
    sim_nodes,
)
from rt_sim.episode_video import episode_frames
from rt_sim.instruction_file import InstructionFileError, Template, draw, load_instruction_file
from rt_sim.tasks import make_task, task_names
from rt_sim.tasks.drive_to_marker import arrived_at
from rt_sim.tasks.pick_cube import cube_lifted

EXPERT = "expert"
# Third-person frames per sim second in videoed episodes (the control rate), and their playback rate.
SCENE_RATE_HZ = 3.0
VIDEO_FPS = 3.0
EVAL_SEED = 100_000
RESULTS_FILE = "results.json"
Z_95 = 1.959964


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


def controller_node(policy: str, profile: str) -> tuple[str, NodeSpec]:
    """rt_expert for `expert`, else rt_policy loading the checkpoint directory `policy`."""
    if policy == EXPERT:
        return "rt_expert", NodeSpec("rt_sim", "rt_expert", params={"profile": profile} if profile else {})
    return "rt_policy", policy_node(Path(policy))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rt-eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("--policy", required=True, help="checkpoint directory (config.json + weights), or 'expert'")
    parser.add_argument("--task", nargs="+", required=True, help=f"one or more of: {', '.join(task_names())}")
    parser.add_argument("--episodes", type=int, required=True, help="episodes per task")
    parser.add_argument("--seed", type=int, default=EVAL_SEED, help=f"first seed per task (default {EVAL_SEED})")
    parser.add_argument("--out", type=Path, default=Path("out/eval"), help="results, plot, video, bags, logs")
    parser.add_argument(
        "--video",
        type=int,
        default=2,
        help="episodes per task rendered into episodes.mp4: the sim's third-person view beside the robot's camera,"
        " with instruction, mode and step",
    )
    parser.add_argument(
        "--instructions",
        type=Path,
        metavar="FILE",
        help="YAML of instruction templates per task (rt_sim/instruction_file.py); each episode says one, drawn from"
        " its seed, instead of the task's own wording",
    )
    add_sim_arguments(parser, image_size=(160, 128))
    args = parser.parse_args(argv)
    unknown = [t for t in args.task if t not in task_names()]
    if unknown:
        parser.error(f"unknown task(s) {unknown}; choose from {', '.join(task_names())}")
    args.templates = {}
    if args.instructions is not None:
        try:
            args.templates = load_instruction_file(args.instructions, args.task)
        except InstructionFileError as err:
            parser.error(f"--instructions: {err}")
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if args.policy != EXPERT and not (Path(args.policy) / "config.json").is_file():
        parser.error(f"--policy {args.policy}: no config.json there (or pass 'expert')")
    return args


def _instruction(templates: list[Template] | None, task: str, seed: int) -> tuple[str, str]:
    """(template, instruction) for an episode under --instructions; ("", "") keeps the task's own wording."""
    if not templates:
        return "", ""
    _, template = draw(templates, seed)
    return template.text, template.render(make_task(task).episode(seed).params)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bags = args.out / "episodes"
    name, controller = controller_node(args.policy, args.profile)
    nodes = {**sim_nodes(args, args.task[0], args.seed, bags), name: controller}
    episodes: list[dict[str, Any]] = []
    started = time.monotonic()
    with episode_session("rt-eval", nodes, args.out / "logs", name) as node:
        for task in args.task:
            max_steps = args.max_steps or make_task(task).max_steps
            for index in range(args.episodes):
                known = closed_episodes(bags)
                seed = args.seed + index
                template, instruction = _instruction(args.templates.get(task), task, seed)
                video = {"scene_camera_rate_hz": SCENE_RATE_HZ if index < args.video else 0.0}
                result = node.run_episode(task, seed, max_steps, instruction=instruction, sim_parameters=video)
                record = episode_record(task, seed, result, template)
                directory = mark_episode(bags, known, record, node)
                episodes.append({**record, "directory": directory.name if directory else None})
                done = [e for e in episodes if e["task"] == task]
                print(
                    f"rt-eval: {task} seed {seed}: {'success' if record['success'] else 'failure'} in "
                    f"{record['steps']} steps ({sum(e['success'] for e in done)}/{len(done)})",
                    flush=True,
                )

    results = {
        "policy": args.policy if args.policy == EXPERT else str(Path(args.policy).resolve()),
        "policy_name": EXPERT if args.policy == EXPERT else Path(args.policy).resolve().name,
        "seed": args.seed,
        "episodes_per_task": args.episodes,
        "instructions": str(args.instructions) if args.instructions else None,
        "camera": [args.image_width, args.image_height],
        "wall_s": time.monotonic() - started,
        "tasks": {t: summarise([e for e in episodes if e["task"] == t]) for t in args.task},
        "episodes": episodes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / RESULTS_FILE).write_text(json.dumps(results, indent=2))
    if episodes:
        plot_success(results, args.out / "success.png")
    shown = [
        bags / e["directory"]
        for t in args.task
        for e in [e for e in episodes if e["task"] == t and e["directory"]][: args.video]
    ]
    if shown:
        render_video(shown, args.out / "episodes.mp4")
    for task, s in results["tasks"].items():
        low, high = s["success_ci95"]
        wrong = f", wrong colour {100 * s['wrong_colour_rate']:.0f}%" if "wrong_colour_rate" in s else ""
        print(
            f"rt-eval: {task}: {s['successes']}/{s['episodes']} = {100 * s['success_rate']:.0f}% "
            f"(95% CI {100 * low:.0f}-{100 * high:.0f}%), {s['mean_steps']:.1f} steps, "
            f"{s['mean_inference_ms']:.1f} ms inference{wrong}; modes {s['mode_sequences']}, "
            f"{s['mean_mode_switches']:.2f} base/arm switches per episode"
        )
        for template, t in s.get("templates", {}).items():
            print(f"rt-eval:   {t['successes']}/{t['episodes']}  {template}")
    print(f"rt-eval: -> {args.out / RESULTS_FILE}")
    return 0 if len(episodes) == args.episodes * len(args.task) else 1
