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
        "console_scripts": [
            "rt-convert = rt_policy_node.policies.rt1.convert:main",
            "rt-dataset = rt_policy_node.data.cli:main",
            "rt-bag-recover = rt_policy_node.data.bag_recover:main",
            "rt-train = rt_policy_node.train.train:main",
            "rt2-init = rt_policy_node.cli.rt2_init:main",
            "rt2-vl-eval = rt_policy_node.cli.rt2_vl_eval:main",
            "rt_policy = rt_policy_node.ros.policy_node:main",
            "rt_action_executor = rt_policy_node.ros.executor_node:main",
            "rt_episode_recorder = rt_policy_node.ros.recorder_node:main",
            "rt_teleop_joy = rt_policy_node.ros.teleop_joy:main",
            "rt_teleop_keyboard = rt_policy_node.ros.teleop_keyboard:main",
            "rt-instruct = rt_policy_node.ros.instruct:main",
            "rt-status = rt_policy_node.ros.status_monitor:main",
        ],
    },
)
