"""The launch-file interpreter behind rt-launch: arguments, conditions, includes, substitutions."""

import sys
import time
from pathlib import Path

import pytest

from rt_bringup.launch_xml import LaunchError, load_launch
from rt_bringup.rt_launch import ProcessGroup, node_command, parse_arguments, typed_value


def write(path, body):
    path.write_text(f'<?xml version="1.0"?>\n<launch>\n{body}\n</launch>\n')
    return path


@pytest.fixture
def share(tmp_path):
    return lambda package: str(tmp_path / "share" / package)


def test_args_conditions_params_and_remaps(tmp_path, share, monkeypatch):
    monkeypatch.setenv("RT_TEST_POLICY", "/models/x")
    launch = write(
        tmp_path / "a.launch.xml",
        """
  <arg name="record" default="false"/>
  <arg name="policy_path" default="$(optenv RT_TEST_POLICY)"/>
  <let name="config" value="$(find-pkg-share rt_bringup)/config"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="policy">
    <param from="$(var config)/policy.yaml"/>
    <param name="policy_path" value="$(var policy_path)"/>
    <remap from="camera/image_raw" to="/head/image"/>
  </node>
  <node pkg="rt_policy_node" exec="rt_episode_recorder" if="$(var record)"/>
  <node pkg="rt_policy_node" exec="rt_teleop_joy" unless="$(not $(var record))"/>
""",
    )
    plan = load_launch(launch, package_share=share)
    assert [n.name for n in plan.nodes] == ["policy"]
    policy = plan.nodes[0]
    assert policy.param_files == [share("rt_bringup") + "/config/policy.yaml"]
    assert policy.params == {"policy_path": "/models/x"}
    assert policy.remaps == [("camera/image_raw", "/head/image")]
    assert plan.declared["record"] == ("false", "")

    plan = load_launch(launch, {"record": "true"}, package_share=share)
    assert [n.name for n in plan.nodes] == ["policy", "rt_episode_recorder", "rt_teleop_joy"]


def test_include_passes_arguments_and_namespaces(tmp_path, share):
    write(
        tmp_path / "inner.launch.xml",
        '<arg name="rate" default="3"/><node pkg="p" exec="e" name="n"><param name="rate" value="$(var rate)"/></node>',
    )
    outer = write(
        tmp_path / "outer.launch.xml",
        f"""<group><push_ros_namespace namespace="robot1"/>
  <include file="$(dirname)/inner.launch.xml"><arg name="rate" value="5"/></include></group>
  <include file="{tmp_path}/inner.launch.xml"/>""",
    )
    first, second = load_launch(outer, package_share=share).nodes
    assert (first.namespace, first.params) == ("/robot1", {"rate": "5"})
    assert (second.namespace, second.params) == ("/", {"rate": "3"})


def test_includes_that_follow_rejects_are_listed_not_read(tmp_path, share):
    write(tmp_path / "inner.launch.xml", '<node pkg="p" exec="inner"/>')
    outer = write(
        tmp_path / "outer.launch.xml",
        """<arg name="world" default="table.sdf"/>
  <include file="$(find-pkg-share ros_gz_sim)/launch/gz_sim.launch.py"><arg name="gz_args" value="-r $(var world)"/>
  </include>
  <include file="$(dirname)/inner.launch.xml"/>""",
    )
    with pytest.raises(LaunchError, match="only XML launch files"):
        load_launch(outer, package_share=share)
    plan = load_launch(outer, package_share=share, follow=lambda file: not file.startswith(share("ros_gz_sim")))
    assert [n.executable for n in plan.nodes] == ["inner"]
    (include,) = plan.includes
    assert include.file == share("ros_gz_sim") + "/launch/gz_sim.launch.py"
    assert include.arguments == {"gz_args": "-r table.sdf"}
    assert include.source == str(outer)


def test_errors_name_the_problem(tmp_path, share):
    launch = write(tmp_path / "b.launch.xml", '<arg name="profile"/><node pkg="p" exec="e"/>')
    with pytest.raises(LaunchError, match="'profile' is required"):
        load_launch(launch, package_share=share)
    with pytest.raises(LaunchError, match="no such launch argument"):
        load_launch(launch, {"profil": "x"}, package_share=share)
    bad = write(tmp_path / "c.launch.xml", '<node pkg="p" exec="e"><param name="x" value="$(var nope)"/></node>')
    with pytest.raises(LaunchError, match=r"\$\(var nope\) is not declared"):
        load_launch(bad, package_share=share)
    unsupported = write(tmp_path / "d.launch.xml", '<timer period="1"/>')
    with pytest.raises(LaunchError, match="not supported"):
        load_launch(unsupported, package_share=share)
    condition = write(tmp_path / "e.launch.xml", '<node pkg="p" exec="e" if="maybe"/>')
    with pytest.raises(LaunchError, match="not a boolean"):
        load_launch(condition, package_share=share)


def test_node_command_is_what_ros2_launch_runs(tmp_path, share):
    launch = write(
        tmp_path / "f.launch.xml",
        """<node pkg="p" exec="e" name="n" namespace="ns" args="--flag">
  <param from="/cfg/n.yaml"/><param name="rate" value="3.5"/><param name="on" value="true"/>
  <param name="path" value="/a/b"/><remap from="in" to="out"/></node>""",
    )
    spec = load_launch(launch, package_share=share).nodes[0]
    command = node_command(spec, tmp_path / "e", tmp_path)
    assert command[:6] == [str(tmp_path / "e"), "--flag", "--ros-args", "-r", "__node:=n", "-r"]
    assert command[6] == "__ns:=/ns"
    assert command[7:9] == ["--params-file", "/cfg/n.yaml"]
    assert command[9] == "--params-file"
    overrides = Path(command[10]).read_text()
    assert "rate: 3.5" in overrides and "'on': true" in overrides and "path: /a/b" in overrides
    assert command[-2:] == ["-r", "in:=out"]


def test_same_named_nodes_in_other_namespaces_keep_their_own_parameters(tmp_path, share):
    launch = write(
        tmp_path / "g.launch.xml",
        """<group><push_ros_namespace namespace="left"/>
  <node pkg="p" exec="e" name="arm"><param name="side" value="l"/></node></group>
<group><push_ros_namespace namespace="right"/>
  <node pkg="p" exec="e" name="arm"><param name="side" value="r"/></node></group>""",
    )
    commands = [node_command(spec, tmp_path / "e", tmp_path) for spec in load_launch(launch, package_share=share).nodes]
    files = [command[command.index("--params-file") + 1] for command in commands]
    assert files[0] != files[1]
    assert ["side: l" in Path(f).read_text() for f in files] == [True, False]


def test_typed_values_and_argument_parsing():
    assert typed_value("3") == 3 and typed_value("0.5") == 0.5 and typed_value("false") is False
    assert typed_value("") == ""
    assert typed_value("a: b") == "a: b"
    assert parse_arguments(["a:=1", "b:=x:=y"]) == {"a": "1", "b": "x:=y"}
    with pytest.raises(LaunchError):
        parse_arguments(["a=1"])


def test_output_is_forwarded_whole_lines_at_once_without_waiting_for_more(capsys):
    group = ProcessGroup()
    script = "import sys, time; sys.stdout.write('a\\nb\\nc\\nhalf'); sys.stdout.flush(); time.sleep(3)"
    group.start("talker", [sys.executable, "-c", script])
    out = ""
    deadline = time.monotonic() + 10
    while "[talker] c" not in out and time.monotonic() < deadline:
        group.forward_output(0.1)
        out += capsys.readouterr().out
    assert "[talker] a\n[talker] b\n[talker] c\n" in out
    assert group.processes["talker"].poll() is None, "forwarded while the node still runs"
    group.stop()
    assert "[talker] half" in capsys.readouterr().out, "a last line without a newline is forwarded at exit"
