"""rt-collect: scripted-expert demonstrations in the simulator, one rosbag2 (MCAP) episode per run.

    rt-collect --task pick_cube --episodes 50 --out data/pick_cube [--seed 0] [--every-colour]

Starts the sim (rt_sim), the executor (rt_action_executor), the expert (rt_expert) and the episode recorder
(rt_episode_recorder) as separate processes on sim time, as rt_bringup's sim.launch.xml describes them with
expert:=true (rt_bringup.episodes.runner, shared with rt-eval), then for each episode: sets the sim's `task`
and `seed` parameters, calls sim/reset, publishes the instruction on rt/instruction and waits for the expert
to terminate (or for the task's step budget to run out, which stops the recording). With `--action-noise`
the robot executes noisy copies of the expert's actions (DART), with `--policy` a learned policy's actions
(DAgger), while the bag keeps the expert's own actions as labels. The recorder leaves
`<out>/episode_<stamp>_<NNNN>/` with the .mcap and episode.json; rt-collect adds to that sidecar's `extra`:
action_noise, expert_success, task, seed, steps (with `--policy` also driven_by and policy_success). Failed
episodes are kept and marked. Process logs go to `<out>/logs/`; a summary with the success rate and episodes
per minute is printed and written to `<out>/collection.json`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from tqdm import tqdm

from rt_bringup.episodes.runner import (
    EXPERT_NODE,
    POLICY_NODE,
    SIM_NODE,
    add_sim_arguments,
    closed_episodes,
    episode_session,
    mark_episode,
    sim_graph,
)
from rt_sim.evaluation import EpisodeResult
from rt_sim.ros.expert_node import EXECUTED_ACTIONS
from rt_sim.scene import COLOURS
from rt_sim.tasks import make_task, task_names


def sidecar_extra(
    task: str, seed: int, result: EpisodeResult, action_noise: float = 0.0, policy: Path | None = None
) -> dict:
    """What rt-collect adds to the episode's sidecar; with DAgger, `driven_by` (the policy the robot followed)
    and `policy_success` (it terminated with the task done, as rt-eval judges it)."""
    driven = {}
    if policy is not None:
        policy_success = bool(result.executed_terminated and result.state["success"])
        driven = {"driven_by": str(policy.resolve()), "policy_success": policy_success}
    return {
        **driven,
        "action_noise": action_noise,
        "expert_success": bool(result.terminated and result.state["success"]),
        "expert_terminated": result.terminated,
        "task": task,
        "seed": seed,
        "steps": result.steps,
        "params": result.episode["params"],
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="rt-collect", description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", required=True, help=f"one of: {', '.join(task_names())}")
    parser.add_argument("--episodes", type=int, required=True, help="number of episodes")
    parser.add_argument("--out", type=Path, required=True, help="output directory (episode_* directories)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode; episode i uses seed + i")
    parser.add_argument(
        "--action-noise",
        type=float,
        default=0.0,
        help="DART: the robot executes the expert's actions plus Gaussian noise of this std (normalised units),"
        " the bag keeps the expert's own actions as labels; 0 = none",
    )
    parser.add_argument(
        "--policy",
        type=Path,
        default=None,
        help="DAgger: the robot follows this policy (checkpoint directory) while the bag keeps the expert's"
        " action for every state the policy reaches; an episode ends on either's TERMINATE",
    )
    parser.add_argument(
        "--every-colour",
        action="store_true",
        help="demonstrate each seed's layout once per colour (4 episodes per seed): the same scene under"
        " instructions that differ only in the colour, which is what ties the colour word to the object",
    )
    add_sim_arguments(parser)
    args = parser.parse_args(argv)
    if args.task not in task_names():
        parser.error(f"unknown task {args.task!r}; choose from {', '.join(task_names())}")
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    if not 0.0 <= args.action_noise <= 1.0:
        parser.error("--action-noise must be in [0, 1]")
    if args.policy is not None and not (args.policy / "config.json").is_file():
        parser.error(f"--policy {args.policy}: no config.json there")
    if args.policy is not None and args.action_noise > 0:
        parser.error("--policy and --action-noise are exclusive: the robot follows one or the other")
    if args.every_colour and "colour" not in make_task(args.task).episode(args.seed).params:
        parser.error(f"--every-colour: task {args.task!r} has no target colour")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    max_steps = args.max_steps or make_task(args.task).max_steps
    log_dir = args.out / "logs"
    nodes = sim_graph(args, args.task, args.seed, args.out, expert=True)
    # What is rt-collect's own is applied here, to the nodes sim.launch.xml describes: DART's noise on the
    # expert's executed copy, and DAgger's policy (as the launch file starts it without expert:=true) on
    # EXECUTED_ACTIONS, which the expert waits for before it labels; the robot, and the sim's lockstep, follow
    # the executed stream while the bag keeps the expert's labels on rt/action.
    if args.action_noise > 0:
        nodes[EXPERT_NODE].parameters.append({"action_noise": args.action_noise, "noise_seed": args.seed})
    if args.policy is not None:
        policy = sim_graph(args, args.task, args.seed, args.out, expert=False, policy=args.policy)[POLICY_NODE]
        nodes[POLICY_NODE] = policy
        policy.remaps.append(("rt/action", EXECUTED_ACTIONS))
        nodes[EXPERT_NODE].parameters.append({"label_after": EXECUTED_ACTIONS})
    if args.action_noise > 0 or args.policy is not None:
        for name in ("rt_action_executor", SIM_NODE):
            nodes[name].remaps.append(("rt/action", EXECUTED_ACTIONS))
    colours = list(COLOURS) if args.every_colour else [""]
    runs = [(args.seed + index, colour) for index in range(args.episodes) for colour in colours]
    judged = "policy_success" if args.policy is not None else "expert_success"
    results: list[dict] = []
    started = time.monotonic()
    with episode_session("rt-collect", nodes, log_dir, "the expert") as node:
        started = time.monotonic()
        progress = tqdm(runs, desc=f"{args.task}", unit="episode")
        for seed, colour in progress:
            known = closed_episodes(args.out)
            result = node.run_episode(args.task, seed, max_steps, colour)
            extra = sidecar_extra(args.task, seed, result, args.action_noise, args.policy)
            directory = mark_episode(args.out, known, extra, node)
            if directory is None:
                raise RuntimeError(f"the recorder wrote no episode for seed {seed} (see {log_dir})")
            results.append({**extra, "directory": directory.name})
            progress.set_postfix(success=f"{sum(r[judged] for r in results)}/{len(results)}")
    minutes = (time.monotonic() - started) / 60.0
    successes = sum(r[judged] for r in results)
    summary = {
        "task": args.task,
        "episodes": len(results),
        "successes_of": judged,
        "successes": successes,
        "success_rate": successes / len(results) if results else 0.0,
        "episodes_per_minute": len(results) / minutes if minutes > 0 else 0.0,
        "failed_seeds": [r["seed"] for r in results if not r[judged]],
        "episodes_list": results,
    }
    (args.out / "collection.json").write_text(json.dumps(summary, indent=2))
    print(
        f"rt-collect: {args.task}: {successes}/{len(results)} {judged.replace('_success', '')} successes "
        f"({100 * summary['success_rate']:.0f}%), {summary['episodes_per_minute']:.1f} episodes/min -> {args.out}"
    )
    return 0 if len(results) == len(runs) else 1


if __name__ == "__main__":
    sys.exit(main())
