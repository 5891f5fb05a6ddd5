#!/usr/bin/env bash
# make demo: one closed-loop episode of the shipped RT-1 (models/rt1_sim) in the simulator, with the real
# nodes as processes (sim in lockstep, rt_policy, rt_action_executor, rt_episode_recorder; rt-eval drives
# them). By default the mission: table_pick, where the robot drives to the table (BASE), switches to the arm,
# picks the named cube and terminates. Leaves under out/demo/: the recorded bag (episodes/episode_*/),
# episode.mp4 (the sim's third-person view beside the robot's camera, with instruction, mode and step) and
# result.txt. DEMO_TASK (any rt_sim task) and DEMO_SEED (default 100000) pick the episode.
set -eo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
# shellcheck disable=SC1091
source scripts/env.sh
set -u
out=out/demo
rm -rf "$out"
rt-eval --policy "${DEMO_POLICY:-models/rt1_sim}" --task "${DEMO_TASK:-table_pick}" --seed "${DEMO_SEED:-100000}" \
  --episodes 1 --video 1 --out "$out"
mv "$out/episodes.mp4" "$out/episode.mp4"
python - "$out" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
results = json.loads((out / "results.json").read_text())
episode = results["episodes"][0]
line = (
    f"{episode['task']} seed {episode['seed']}: {episode['instruction']!r}: "
    f"{'success' if episode['success'] else 'failure'} in {episode['steps']} steps (modes {episode['mode_sequence']}), "
    f"{results['wall_s']:.0f} s wall, {episode['mean_inference_ms']:.1f} ms inference per step"
)
(out / "result.txt").write_text(line + "\n")
print(line)
PY
echo "demo: bag in $out/episodes/, video $out/episode.mp4, result $out/result.txt"
