# Sourced by setup.sh and env.sh: finds the ROS 2 underlay and defines how to enter it.
# RT_ROS_UNDERLAY is the setup.bash of a system ROS 2, or empty when ROS comes from the PyPI wheels.
RT_ROS_UNDERLAY=""
if [[ -n "${ROS_DISTRO:-}" && -f "/opt/ros/${ROS_DISTRO}/setup.bash" ]]; then
  RT_ROS_UNDERLAY="/opt/ros/${ROS_DISTRO}/setup.bash"
else
  for distro in kilted jazzy humble rolling; do
    if [[ -f "/opt/ros/$distro/setup.bash" ]]; then RT_ROS_UNDERLAY="/opt/ros/$distro/setup.bash"; break; fi
  done
fi

rt_ros_underlay_env() {
  if [[ -n "$RT_ROS_UNDERLAY" ]]; then
    # shellcheck disable=SC1090
    source "$RT_ROS_UNDERLAY"
  else
    # The wheels install ROS into the venv prefix: it is the underlay that ament and CMake search.
    export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
    export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
  fi
}
