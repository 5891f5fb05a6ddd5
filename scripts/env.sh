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
# sim.launch.xml's robot_state_publisher argument defaults to this: false where the package is not on
# AMENT_PREFIX_PATH (pip-only machines), so `ros2 launch` and rt-launch do not fail on the missing package.
_rt_rsp=false
IFS=: read -ra _rt_prefixes <<<"${AMENT_PREFIX_PATH:-}"
for _rt_prefix in "${_rt_prefixes[@]}"; do
  [[ -e "$_rt_prefix/share/ament_index/resource_index/packages/robot_state_publisher" ]] && _rt_rsp=true
done
[[ "$_rt_rsp" == false ]] && export RT_ROBOT_STATE_PUBLISHER=false
unset _rt_rsp _rt_prefixes _rt_prefix
# Fast DDS's default 512 KiB shared-memory segment drops most best-effort camera frames larger than
# that (640x480 rgb8 is 900 KiB) between processes; the project's profile enlarges it.
if [[ "$RMW_IMPLEMENTATION" == rmw_fastrtps_cpp && -z "${FASTDDS_DEFAULT_PROFILES_FILE:-}" ]]; then
  export FASTDDS_DEFAULT_PROFILES_FILE="$RT_ROOT/install/rt_bringup/share/rt_bringup/config/fastdds_large_data.xml"
fi
