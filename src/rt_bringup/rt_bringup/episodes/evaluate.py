"""rt-eval: closed-loop success of a policy (or the scripted expert) in the simulator, on held-out seeds.

    rt-eval --policy models/rt1_sim --task pick_cube drive_to_marker --episodes 50 --out out/eval/rt1_sim
    rt-eval --policy expert --task pick_cube --episodes 50 --out out/eval/expert

Starts the sim (lockstep), the executor, the controller (rt_policy with `policy_path`, or rt_expert for
`--policy expert`) and the episode recorder as processes on sim time, as rt_bringup's sim.launch.xml
describes them (rt_bringup.episodes.runner, shared with rt-collect). Episode i of each task uses seed
`--seed + i`; the default 100000 keeps evaluation layouts disjoint from collection seeds (the shipped
model's data used 0-59 and 1000-1059). An episode ends on the controller's TERMINATE or the task's step
budget; it succeeds when it terminated and the task's success holds in sim/task_state's privileged state.
Writes `<out>/results.json` (per task: success rate with a 95% Wilson interval, mean steps, mean inference
ms, wrong-colour rate for pick_cube and drive_to_marker; every episode with its layout, instruction and mode
sequence), `<out>/success.png` and `<out>/episodes.mp4` (the first `--video` episodes of each task from
their bags: the sim's third-person view beside the robot's camera, with the instruction, mode and step).
With `--instructions FILE` each episode says one of the user's templates instead of the task's own wording,
and the results give the success per template.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from rt_bringup.episodes.runner import (
    EXPERT_NODE,
    POLICY_NODE,
    add_sim_arguments,
    closed_episodes,
    episode_session,
    mark_episode,
    sim_graph,
)
from rt_sim.evaluation import episode_record, plot_success, render_video, summarise
from rt_sim.instruction_file import InstructionFileError, Template, draw, load_instruction_file
from rt_sim.tasks import make_task, task_names

EXPERT = "expert"
# Third-person frames per sim second in videoed episodes (the control rate), and their playback rate.
SCENE_RATE_HZ = 3.0
EVAL_SEED = 100_000
RESULTS_FILE = "results.json"


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
    expert = args.policy == EXPERT
    policy = None if expert else Path(args.policy)
    nodes = sim_graph(args, args.task[0], args.seed, bags, expert=expert, policy=policy)
    name = EXPERT_NODE if expert else POLICY_NODE
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


if __name__ == "__main__":
    sys.exit(main())
