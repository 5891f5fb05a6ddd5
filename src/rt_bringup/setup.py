import os

from setuptools import find_packages, setup

PACKAGE = "rt_bringup"
DATA_DIRS = ("launch", "config")


def share_files() -> list[tuple[str, list[str]]]:
    """Every file under the data directories, installed at the same relative path in share/."""
    entries = []
    for top in DATA_DIRS:
        for folder, _, files in os.walk(top):
            if files:
                entries.append((os.path.join("share", PACKAGE, folder), [os.path.join(folder, f) for f in files]))
    return entries


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *share_files(),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="RT ROS maintainers",
    maintainer_email="maintainers@rt-ros.dev",
    description="Launch and parameter files of the Robotics Transformer suite; rt-launch, rt-collect and rt-eval.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "rt-launch = rt_bringup.rt_launch:main",
            "rt-collect = rt_bringup.episodes.collect:main",
            "rt-eval = rt_bringup.episodes.evaluate:main",
        ]
    },
)
