from setuptools import find_packages, setup

PACKAGE = "rt_policy_node"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["test"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="RT ROS maintainers",
    maintainer_email="maintainers@rt-ros.dev",
    description="Robotics Transformer policies and their ROS 2 nodes.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [],
    },
)
