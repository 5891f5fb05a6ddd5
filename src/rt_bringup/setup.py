from glob import glob

from setuptools import find_packages, setup

PACKAGE = "rt_bringup"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.xml")),
        (f"share/{PACKAGE}/config", glob("config/*.yaml")),
        (f"share/{PACKAGE}/urdf", glob("urdf/*")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="RT ROS maintainers",
    maintainer_email="maintainers@rt-ros.dev",
    description="Launch files, configs and robot description of the Robotics Transformer suite.",
    license="Apache-2.0",
    entry_points={"console_scripts": []},
)
