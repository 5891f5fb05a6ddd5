# Source this file (`source scripts/env.sh`) to use the built workspace: the venv, the ROS 2
# underlay, install/setup.bash, and the project's command-line tools on PATH.
RT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=scripts/ros_underlay.sh
source "$RT_ROOT/scripts/ros_underlay.sh"
# shellcheck disable=SC1091
source "$RT_ROOT/.venv/bin/activate"
rt_ros_underlay_env
# shellcheck disable=SC1091
source "$RT_ROOT/install/setup.bash"
for _rt_bin in "$RT_ROOT"/install/*/lib/rt_*; do
  [[ -d "$_rt_bin" ]] && PATH="$_rt_bin:$PATH"
done
unset _rt_bin
export PATH
export RMW_IMPLEMENTATION="${RMW_IMPLEMENTATION:-rmw_fastrtps_cpp}"
# Keep DDS discovery on this machine unless the user says otherwise (Iron and later).
export ROS_AUTOMATIC_DISCOVERY_RANGE="${ROS_AUTOMATIC_DISCOVERY_RANGE:-LOCALHOST}"
export MUJOCO_GL="${MUJOCO_GL:-egl}"
# The launch files' default policy_path: the shipped simulation model.
export RT_POLICY_PATH="${RT_POLICY_PATH:-$RT_ROOT/models/rt1_sim}"
# Fast DDS's default 512 KiB shared-memory segment drops most best-effort camera frames larger than
# that (640x480 rgb8 is 900 KiB) between processes; the project's profile enlarges it.
if [[ "$RMW_IMPLEMENTATION" == rmw_fastrtps_cpp && -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}" ]]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$RT_ROOT/install/rt_bringup/share/rt_bringup/config/fastdds_large_data.xml"
fi
