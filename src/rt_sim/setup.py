from setuptools import find_packages, setup

PACKAGE = "rt_sim"

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
    description="MuJoCo mobile-manipulator simulation for the Robotics Transformer suite.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "rt_sim = rt_sim.ros.sim_node:main",
            "rt_expert = rt_sim.ros.expert_node:main",
            "rt-bag-video = rt_sim.bag_video:main",
            "rt-vl-data = rt_sim.vl_data:main",
        ],
    },
)
