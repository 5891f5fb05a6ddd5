"""The bringup tests drive real node processes with the ROS test harness of tests/ros, and check the launch
files against upstream ROS 2 launch installed from the wheels in the shared/ folder beside the repository."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ros"))

ROS_LAUNCH_WHEELS = Path(__file__).resolve().parents[3] / "shared" / "ros_launch"
REAL_LAUNCH = Path(__file__).resolve().parent / "real_launch.py"
# launch's own dependencies that the project's venv lacks (lark: launch needs 1.x, rosidl brings 0.12).
WHEEL_DEPENDENCIES = ("osrf-pycommon==2.0.2", "lark==1.3.1")


@dataclass(frozen=True)
class RealLaunch:
    """Upstream launch, launch_xml, launch_ros and ros2launch installed in `site`, outside the venv."""

    site: Path

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for real_launch.py: the wheels first on PYTHONPATH and AMENT_PREFIX_PATH."""
        # launch finds its grammar.lark through the ament index.
        env = {**os.environ, **(extra or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(self.site), env.get("PYTHONPATH")]))
        env["AMENT_PREFIX_PATH"] = os.pathsep.join(filter(None, [str(self.site), env.get("AMENT_PREFIX_PATH")]))
        return env

    def resolve(self, request: dict, workdir: Path) -> dict:
        """Runs `real_launch.py resolve` on `request` in `workdir` and returns its answer."""
        # A case that sets AMENT_PREFIX_PATH keeps the wheels' prefix first on it.
        for case in request.get("cases", []):
            if "AMENT_PREFIX_PATH" in case.get("env", {}):
                case["env"]["AMENT_PREFIX_PATH"] = f"{self.site}{os.pathsep}{case['env']['AMENT_PREFIX_PATH']}"
        out = workdir / "real_launch.json"
        subprocess.run(
            [sys.executable, str(REAL_LAUNCH), "resolve", str(out)],
            input=json.dumps(request),
            text=True,
            env=self.env(),
            cwd=workdir,
            check=True,
            timeout=240,
        )
        return json.loads(out.read_text())

    def command(self, launch_file: Path, argv: list[str]) -> list[str]:
        """The command that runs `launch_file` as `ros2 launch` does."""
        return [sys.executable, str(REAL_LAUNCH), "run", str(launch_file), *argv]


@pytest.fixture(scope="session")
def real_launch(tmp_path_factory: pytest.TempPathFactory) -> RealLaunch:
    """The wheels installed into a scratch folder (never into .venv); skips where shared/ has none."""
    wheels = sorted(ROS_LAUNCH_WHEELS.glob("*.whl"))
    if not wheels:
        pytest.skip(f"ROS 2 launch wheels not found at {ROS_LAUNCH_WHEELS} (shared/ beside the repo)")
    site = tmp_path_factory.mktemp("ros_launch") / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site)]
        + [str(wheel) for wheel in wheels]
        + list(WHEEL_DEPENDENCIES),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, f"installing the launch wheels failed:\n{install.stdout}\n{install.stderr}"
    return RealLaunch(site)
