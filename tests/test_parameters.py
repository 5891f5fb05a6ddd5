"""The nodes' parameter tables: the generated reference is current, the parameter files agree with the tables, and
the table type itself (rt_policy_node.parameters). No DDS: the node modules are imported, no node is started."""

import importlib.util
from pathlib import Path

import pytest
import yaml

from rt_gazebo import base_relay
from rt_policy_node.parameters import Parameter, defaults, markdown_table
from rt_policy_node.ros import executor_node, policy_node, recorder_node, teleop_joy, teleop_keyboard
from rt_sim.ros import expert_node, sim_node

ROOT = Path(__file__).resolve().parents[1]
# ROS node name -> its table.
TABLES = {
    "rt_policy": policy_node.PARAMETERS,
    "rt_action_executor": executor_node.PARAMETERS,
    "rt_episode_recorder": recorder_node.PARAMETERS,
    "rt_teleop_joy": teleop_joy.PARAMETERS,
    "rt_teleop_keyboard": teleop_keyboard.PARAMETERS,
    "rt_sim": sim_node.PARAMETERS,
    "rt_expert": expert_node.PARAMETERS,
    "rt_gz_base_relay": base_relay.PARAMETERS,
}
# The nodes' parameter files (config/profiles/ holds robot profiles, not parameter files).
CONFIGS = [
    *sorted((ROOT / "src" / "rt_bringup" / "config").glob("*.yaml")),
    ROOT / "src/rt_gazebo/config/base_relay.yaml",
]


def load_generator():
    spec = importlib.util.spec_from_file_location("parameter_reference", ROOT / "scripts" / "parameter_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def flatten(parameters: dict, prefix: str = "") -> dict:
    """A parameter file's nested mapping -> ROS's dotted names (`scale: {x: 1}` is `scale.x`)."""
    flat = {}
    for key, value in parameters.items():
        if isinstance(value, dict):
            flat |= flatten(value, f"{prefix}{key}.")
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def test_the_parameter_reference_is_generated_from_every_table_and_up_to_date():
    generator = load_generator()
    assert list(generator.NODES) == list(TABLES)
    assert generator.check() is None, generator.check()


def test_a_stale_reference_is_reported_with_the_command_that_regenerates_it(tmp_path):
    stale = tmp_path / "parameters.md"
    stale.write_text("old\n")
    assert "python scripts/parameter_reference.py" in load_generator().check(stale)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_parameter_files_set_only_declared_parameters_to_their_defaults(path):
    problems = []
    for node, section in yaml.safe_load(path.read_text()).items():
        assert node in TABLES, f"{path.name}: {node!r} is no node of ours"
        table = {p.name: p for p in TABLES[node]}
        for name, value in flatten(section["ros__parameters"]).items():
            declared = table.get(name)
            if declared is None:
                problems.append(f"{node}: {name} is not declared")
            elif Parameter(name, value, "").type_name != declared.type_name:
                problems.append(f"{node}: {name} is a {declared.type_name}, the file gives {value!r}")
            elif value != (list(declared.default) if isinstance(declared.default, tuple) else declared.default):
                problems.append(f"{node}: {name} is {value!r} in the file, {declared.default!r} in the table")
    assert not problems, f"{path.name}:\n" + "\n".join(problems)


def test_every_table_has_distinct_names_and_defaults_within_their_bounds():
    for node, table in TABLES.items():
        names = [p.name for p in table]
        assert len(set(names)) == len(names), node
        assert all(p.low is None or p.low <= p.default <= p.high for p in table), node


# -- rt_policy_node.parameters ----------------------------------------------------------------------


def test_type_names_follow_the_default():
    types = {True: "bool", 3: "int", 0.5: "double", "x": "string", ("a", "b"): "string array", (1, 2): "array"}
    assert [Parameter("p", default, "").type_name for default in types] == list(types.values())


def test_bounds_need_both_ends_a_number_and_the_default_inside():
    with pytest.raises(ValueError, match="both bounds"):
        Parameter("p", 1.0, "", low=0.0)
    with pytest.raises(TypeError, match="numeric"):
        Parameter("p", "x", "", low=0, high=1)
    with pytest.raises(TypeError, match="numeric"):
        Parameter("p", True, "", low=0, high=1)
    with pytest.raises(ValueError, match="outside"):
        Parameter("p", 2.0, "", low=0.0, high=1.0)


def test_markdown_table():
    table = (
        Parameter("rate", 0.5, "Per second", low=0.1, high=100.0, read_only=True),
        Parameter("count", 3, "A | B", low=-1, high=127),
        Parameter("on", False, "Switch."),
        Parameter("path", "", "Empty: none.", read_only=True),
        Parameter("topics", ["a", "b/c"], "Topics"),
    )
    assert defaults(table) == {"rate": 0.5, "count": 3, "on": False, "path": "", "topics": ["a", "b/c"]}
    assert markdown_table(table).splitlines() == [
        "| parameter | type | default | range | description |",
        "|---|---|---|---|---|",
        "| `rate` | double | `0.5` | 0.1 .. 100 | Per second. Read-only. |",
        "| `count` | int | `3` | -1 .. 127 | A \\| B |",
        "| `on` | bool | `false` |  | Switch. |",
        '| `path` | string | `""` |  | Empty: none. Read-only. |',
        "| `topics` | string array | `a`, `b/c` |  | Topics |",
    ]
