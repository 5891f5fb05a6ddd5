"""rt-eval end to end: real sim, executor, controller and recorder processes; results JSON, plot, video, bags."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import imageio.v3 as iio
import pytest

from rt_policy_node.data.bag_io import list_episodes, read_episode
from rt_policy_node.policies.policy import Mode
from rt_sim.evaluation import (
    EpisodeResult,
    episode_record,
    mode_sequence,
    mode_switches,
    plot_success,
    summarise,
    wilson_interval,
)
from rt_sim.instruction_file import draw, load_instruction_file
from rt_sim.tasks import make_task

SHIPPED_MODEL = Path(__file__).resolve().parents[2] / "models" / "rt1_sim"
needs_rt_eval = pytest.mark.skipif(shutil.which("rt-eval") is None, reason="rt_sim is not built")


def rt_eval(out: Path, *arguments: str, camera: tuple[int, int] = (64, 48)) -> dict:
    command = ["rt-eval", "--out", str(out), "--image-width", str(camera[0]), "--image-height", str(camera[1])]
    command += arguments
    result = subprocess.run(command, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads((out / "results.json").read_text())


@pytest.mark.parametrize(
    ("successes", "trials", "low", "high"),
    [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0), (45, 50, 0.7864, 0.9565)],
)
def test_wilson_interval_matches_the_closed_form(successes, trials, low, high):
    assert wilson_interval(successes, trials) == pytest.approx((low, high), abs=1e-4)


@pytest.mark.slow
@needs_rt_eval
def test_expert_reference_run_writes_results_plot_video_and_marked_bags(tmp_path):
    results = rt_eval(tmp_path, "--policy", "expert", "--task", "drive_to_marker", "--episodes", "2", "--video", "1")

    summary = results["tasks"]["drive_to_marker"]
    assert summary["episodes"] == 2 and summary["successes"] == 2 and summary["success_ci95"][1] == 1.0
    assert 0.0 < summary["success_ci95"][0] < 1.0 and summary["mean_steps"] > 1
    assert summary["mean_inference_ms"] == 0.0 and summary["wrong_colour_rate"] == 0.0
    assert [e["seed"] for e in results["episodes"]] == [100000, 100001]
    layout = make_task("drive_to_marker").episode(100001).as_json()["layout"]
    assert results["episodes"][1]["layout"] == json.loads(json.dumps(layout))

    bags = list_episodes(tmp_path / "episodes")
    assert [b.name for b in bags] == [e["directory"] for e in results["episodes"]]
    info = read_episode(bags[0])
    assert info.outcome == "terminated" and info.extra["success"] is True and info.extra["seed"] == 100000
    assert info.message_counts["/rt/action"] == results["episodes"][0]["steps"]

    # The first episode only: the sim's 640x360 third-person view beside a 320-pixel panel with the robot's camera.
    frames = iio.imread(tmp_path / "episodes.mp4", index=None)
    assert frames.shape[0] > 1 and frames.shape[1:3] == (360, 960)
    counts = [read_episode(b).message_counts for b in bags]
    assert counts[0]["/scene_camera/image_raw"] > 1 and "/scene_camera/image_raw" not in counts[1]
    assert iio.imread(tmp_path / "success.png").ndim == 3


@pytest.mark.slow
@needs_rt_eval
def test_step_budget_ends_episodes_and_the_next_one_starts_clean(tmp_path):
    arguments = ("--policy", "expert", "--task", "pick_cube", "--episodes", "2", "--max-steps", "3", "--video", "0")
    results = rt_eval(tmp_path, *arguments)

    assert [(e["steps"], e["terminated"], e["success"]) for e in results["episodes"]] == [(3, False, False)] * 2
    assert results["tasks"]["pick_cube"]["wrong_colour_rate"] == 0.0
    infos = [read_episode(b) for b in list_episodes(tmp_path / "episodes")]
    assert [i.outcome for i in infos] == ["stopped", "stopped"]
    assert [i.instruction for i in infos] == [e["instruction"] for e in results["episodes"]]


@pytest.mark.slow
@needs_rt_eval
@pytest.mark.skipif(not (SHIPPED_MODEL / "model.safetensors").is_file(), reason="models/rt1_sim is not there")
def test_shipped_model_runs_one_closed_loop_table_pick_episode(tmp_path):
    # The mission: drive to the table in BASE mode, switch to ARM, pick, TERMINATE. The camera size the model's
    # training data was recorded at (MODEL_CARD.md).
    arguments = ("--policy", str(SHIPPED_MODEL), "--task", "table_pick", "--episodes", "1", "--video", "0")
    results = rt_eval(tmp_path, *arguments, camera=(160, 128))

    (episode,) = results["episodes"]
    assert episode["steps"] >= 1 and episode["mean_inference_ms"] > 0.0
    assert episode["instruction"] and episode["params"]["colour"] in episode["instruction"]
    summary = results["tasks"]["table_pick"]
    assert summary["success_rate"] in (0.0, 1.0) and sum(summary["mode_sequences"].values()) == 1
    outcome = "success" if episode["success"] else "failure"
    print(f"shipped model, table_pick seed 100000: {outcome}, modes {episode['mode_sequence']}")


def _episode(task: str, success: bool, modes: list[int], template: str = "") -> dict:
    result = EpisodeResult(
        {"instruction": "x", "params": {"colour": "red"}, "layout": {}}, modes, [1.0] * len(modes), {}
    )
    result.state = {"success": success, "cubes": {}, "markers": {}}
    return episode_record(task, 0, result, template)


def test_summary_and_plot_hold_at_none_and_all_successes_for_every_n_up_to_50(tmp_path):
    summaries = {}
    for n in range(1, 51):
        for successes in (0, n):
            summary = summarise([_episode("table_pick", i < successes, [Mode.TERMINATE]) for i in range(n)])
            low, high = summary["success_ci95"]
            assert low <= summary["success_rate"] <= high and low >= 0.0 and high <= 1.0, (successes, n)
            summaries[f"{successes}/{n}"] = summary
    plot_success({"tasks": summaries, "policy_name": "p", "seed": 0}, tmp_path / "success.png")
    assert (tmp_path / "success.png").is_file()


def test_mode_sequences_show_whether_the_policy_switched_in_order():
    base, arm, stop = Mode.BASE, Mode.ARM, Mode.TERMINATE
    assert mode_sequence([base, base, arm, arm, stop]) == "base>arm>terminate"
    assert mode_switches([base, base, arm, arm, stop]) == 1
    assert mode_sequence([base, arm, base, arm]) == "base>arm>base>arm" and mode_switches([base, arm, base, arm]) == 3
    assert mode_sequence([]) == "" and mode_switches([stop]) == 0
    summary = summarise(
        [
            _episode("table_pick", True, [base, base, arm, stop]),
            _episode("table_pick", False, [base, arm, base, arm]),
            _episode("table_pick", True, [base, arm, arm, stop]),
            _episode("table_pick", False, [base] * 4),
        ]
    )
    assert summary["base_arm_terminate_rate"] == 0.5
    assert summary["mean_mode_switches"] == pytest.approx((1 + 3 + 1 + 0) / 4)
    assert summary["mode_sequences"] == {"base>arm>terminate": 2, "base>arm>base>arm": 1, "base": 1}


def test_success_is_reported_per_instruction_template():
    summary = summarise(
        [
            _episode("pick_cube", True, [Mode.ARM, Mode.TERMINATE], "grab the {colour} block"),
            _episode("pick_cube", False, [Mode.ARM], "grab the {colour} block"),
            _episode("pick_cube", True, [Mode.ARM, Mode.TERMINATE], "lift the {colour} cube"),
        ]
    )
    assert summary["templates"] == {
        "grab the {colour} block": {"episodes": 2, "successes": 1, "success_rate": 0.5},
        "lift the {colour} cube": {"episodes": 1, "successes": 1, "success_rate": 1.0},
    }


def test_a_bad_instructions_file_fails_before_anything_starts(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pick_cube:\n  - pick up the cube\n")
    command = ["rt-eval", "--policy", "expert", "--task", "pick_cube", "--episodes", "1", "--out", str(tmp_path / "o")]
    result = subprocess.run([*command, "--instructions", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "has no {colour}" in result.stderr and "bad.yaml" in result.stderr
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
@needs_rt_eval
def test_episodes_say_the_users_own_words_and_results_keep_them(tmp_path):
    instructions = tmp_path / "mine.yaml"
    instructions.write_text(
        "pick_cube:\n  - would you lift the {colour} cube\n  - template: 'levanta el cubo {colour}'\n"
        "    colours: {red: rojo, green: verde, blue: azul, yellow: amarillo}\n"
    )
    arguments = ("--policy", "expert", "--task", "pick_cube", "--episodes", "2", "--max-steps", "2", "--video", "0")
    results = rt_eval(tmp_path, *arguments, "--instructions", str(instructions))
    templates = load_instruction_file(instructions, ["pick_cube"])["pick_cube"]
    for episode in results["episodes"]:
        _, template = draw(templates, episode["seed"])
        assert episode["template"] == template.text
        assert episode["instruction"] == template.render(make_task("pick_cube").episode(episode["seed"]).params)
        assert read_episode(tmp_path / "episodes" / episode["directory"]).instruction == episode["instruction"]
    assert sum(t["episodes"] for t in results["tasks"]["pick_cube"]["templates"].values()) == 2
