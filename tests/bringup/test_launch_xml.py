"""The launch-file interpreter behind rt-launch: substitution syntax, typed parameters, include scoping,
conditions, on_exit and the process group. test_real_launch.py checks the same against upstream launch."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rt_bringup.launch_substitutions import LaunchContext, LaunchError, Substitution, describe, parse_substitutions
from rt_bringup.launch_types import coerce
from rt_bringup.launch_xml import command_line, launch_arguments, load_launch
from rt_bringup.processes import ProcessGroup
from rt_bringup.rt_launch import LAUNCH_STOP, describe_arguments, node_command, parse_arguments

EXEC = "rt_policy_node"


def write(path: Path, body: str) -> Path:
    path.write_text(f'<?xml version="1.0"?>\n<launch>\n{body}\n</launch>\n')
    return path


def perform(text: str, **configurations: str) -> str:
    context = LaunchContext()
    context.configurations.update(configurations)
    return context.perform(parse_substitutions(text))


def var(name: str) -> Substitution:
    return Substitution("var", ((name,),))


# -- substitution syntax ------------------------------------------------------------------------


def test_text_and_substitutions_split_where_the_grammar_says():
    assert parse_substitutions("") == ("",)
    assert parse_substitutions("a $(var x) b") == ("a ", var("x"), " b")
    assert parse_substitutions("$(var x)$(var y)") == (var("x"), var("y"))
    assert parse_substitutions("$ (var x) a)b") == ("$ (var x) a)b",)
    assert parse_substitutions("$$(var x)") == ("$", var("x"))


def test_quotes_group_an_argument_and_keep_spaces_and_parentheses():
    assert parse_substitutions("$(var 'a b')") == (var("a b"),)
    assert parse_substitutions('$(var "a (b)")') == (var("a (b)"),)
    assert parse_substitutions("$(env NAME '')") == (Substitution("env", (("NAME",), ())),)
    assert parse_substitutions("'quoted'") == ("'quoted'",), "quotes are plain text outside a substitution"
    assert perform('$(var x "it\'s")') == "it's"


def test_backslash_escapes():
    assert parse_substitutions(r"a\b") == ("ab",)
    assert parse_substitutions(r"a\\b") == ("a\\b",)
    assert parse_substitutions(r"\$(var x)") == ("$(var x)",), "an escaped $ opens no substitution"
    assert perform(r"$(var x\))", **{"x)": "paren"}) == "paren"
    assert perform(r"$(var x 'it\'s')") == "it's"


def test_substitutions_nest_in_arguments_and_quoted_strings():
    inner = Substitution("find-pkg-share", (("rt_bringup",),))
    command = parse_substitutions("$(command 'cat $(find-pkg-share rt_bringup)/urdf/x.urdf')")
    assert command == (Substitution("command", (("cat ", inner, "/urdf/x.urdf"),)),)
    assert describe(command) == "Command('cat ' + FindPackageShare(pkg='rt_bringup') + '/urdf/x.urdf')"
    assert perform("$(var missing 'default $(var x)')", x="X") == "default X"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("$(optenv X)", "Unknown substitution: optenv"),
        ("$(var  x)", "invalid substitution syntax"),
        ("$(var x", "invalid substitution syntax"),
        ("$(var 'x)", "invalid substitution syntax"),
        ("$(var)", "var substitution expects 1 or 2 arguments"),
        ("$(dirname x)", "dirname substitution doesn't expect arguments"),
        ("$(eval 1 + 1)", "not supported by rt-launch"),
        ("$(any true)", "unexpected keyword argument 'args'"),
    ],
)
def test_bad_substitutions_are_refused_when_read(text, message):
    with pytest.raises(LaunchError, match=message):
        parse_substitutions(text)


def test_logic_substitutions():
    assert perform("$(not yes)") == "false", "YAML booleans"
    assert perform("$(and 1 true)") == "true"
    assert perform("$(or false 0)") == "false"
    assert perform("$(equals 1.0 1)") == "true", "numbers compare as numbers"
    assert perform("$(equals True 1)") == "true", "booleans compare as booleans"
    assert perform("$(not-equals a b)") == "true"
    assert perform("$(equals '' '')") == "true"
    assert perform("$(equals $(var x) '')", x="") == "false", "an empty quoted string compares as []"
    assert perform("$(if $(var x) yes no)", x="false") == "no"
    with pytest.raises(LaunchError, match="Cannot convert value 'maybe'"):
        perform("$(not maybe)")
    with pytest.raises(LaunchError, match="cannot convert it to a scalar"):
        perform("$(not '')")


def test_env_and_command(monkeypatch, tmp_path):
    monkeypatch.setenv("RT_TEST_VALUE", "set")
    monkeypatch.delenv("RT_TEST_UNSET", raising=False)
    assert perform("$(env RT_TEST_VALUE)") == "set"
    assert perform("$(env RT_TEST_UNSET 'fall back')") == "fall back"
    with pytest.raises(LaunchError, match="environment variable 'RT_TEST_UNSET' does not exist"):
        perform("$(env RT_TEST_UNSET)")
    assert perform('$(command \'printf "%s|" a "b c"\')') == "a|b c|", "split like a shell, run without one"
    with pytest.raises(LaunchError, match="showed stderr output"):
        perform("$(command 'sh -c \"echo err >&2\"')")
    with pytest.raises(LaunchError, match="executed command failed"):
        perform("$(command false)")
    assert perform("$(command 'sh -c \"echo out; echo err >&2\"' ignore)") == "out\n"


# -- typed values ---------------------------------------------------------------------------------


def test_yaml_rules_and_types():
    assert coerce("3", None, lenient=False) == 3
    assert coerce("yes", None, lenient=False) is True
    assert coerce("", None, lenient=False) == ""
    with pytest.raises(ValueError, match="using yaml rules"):
        coerce("a: b", None, lenient=False)
    assert coerce("a: b: c", None, lenient=True) == "a: b: c"
    assert coerce("yes", (str, False), lenient=False) == "yes"
    assert repr(coerce("0", (float, False), lenient=False)) == "0.0"
    assert coerce("1", (bool, False), lenient=False) is True
    assert coerce("[1, 2]", (int, True), lenient=False) == [1, 2]
    with pytest.raises(ValueError):
        coerce("1.5", (int, False), lenient=False)


def test_params_are_typed_like_ros2_launch(tmp_path):
    launch = write(
        tmp_path / "typed.launch.xml",
        f"""<arg name="text" default="yes"/><arg name="number" default="1"/>
  <node pkg="{EXEC}" exec="rt_policy" name="typed">
    <param name="literal" value="3"/>
    <param name="literal_bool" value="on"/>
    <param name="yaml" value="$(var text)"/>
    <param name="text" value="$(var text)" type="str"/>
    <param name="rate" value="$(var number)" type="float"/>
    <param name="count" value="$(var number)" type="int"/>
    <param name="list" value="[1, $(var number)]"/>
    <param name="group"><param name="inner" value="x"/></param>
  </node>""",
    )
    (spec,) = load_launch(launch, {"number": "0"}).nodes
    names = ["literal", "literal_bool", "yaml", "text", "rate", "count", "list", "group.inner"]
    assert [list(entry) for entry in spec.parameters] == [[name] for name in names], "one file per <param>, in order"
    params = spec.params
    assert (params["literal"], params["literal_bool"], params["yaml"], params["text"]) == (3, True, True, "yes")
    assert repr(params["rate"]) == "0.0" and repr(params["count"]) == "0"
    assert params["list"] == [1, 0] and params["group.inner"] == "x"
    with pytest.raises(LaunchError, match="using yaml rules"):
        load_launch(launch, {"number": "0", "text": "a: b"})
    with pytest.raises(LaunchError, match=r"invalid literal for int\(\)"):
        load_launch(launch, {"number": "1.5"})


# -- arguments, includes, groups ------------------------------------------------------------------


def test_include_is_not_a_scope_and_command_line_arguments_reach_included_files(tmp_path):
    write(
        tmp_path / "inner.launch.xml",
        f"""<arg name="rate" default="3"/><arg name="topic" default="inner"/>
  <let name="set_inside" value="from inner"/>
  <node pkg="{EXEC}" exec="rt_policy" name="inner">
    <param name="rate" value="$(var rate)"/><param name="topic" value="$(var topic)"/>
  </node>""",
    )
    outer = write(
        tmp_path / "outer.launch.xml",
        f"""<include file="$(dirname)/inner.launch.xml"><arg name="rate" value="5"/></include>
  <node pkg="{EXEC}" exec="rt_policy" name="after"><param name="leaked" value="$(var set_inside)"/></node>""",
    )
    plan = load_launch(outer, {"topic": "/cam", "rate": "9"})
    inner, after = plan.nodes
    assert inner.params == {"rate": 5, "topic": "/cam"}, "include args win over the command line; others pass"
    assert after.params == {"leaked": "from inner"}
    assert [argument.name for argument in launch_arguments(outer)] == [], "$(dirname) needs a launch context"


def test_groups_scope_configurations_and_namespaces(tmp_path):
    launch = write(
        tmp_path / "groups.launch.xml",
        f"""<group><let name="x" value="in"/><push-ros-namespace namespace="robot1"/>
    <node pkg="{EXEC}" exec="rt_policy" name="a"><param name="x" value="$(var x)"/></node></group>
  <node pkg="{EXEC}" exec="rt_policy" name="b"><param name="x" value="$(var x out)"/></node>
  <group scoped="false"><let name="y" value="kept"/><push-ros-namespace namespace="/abs"/></group>
  <node pkg="{EXEC}" exec="rt_policy" name="c" namespace="sub"><param name="y" value="$(var y)"/></node>
  <group forwarding="false"><keep name="k" value="$(var y)"/>
    <node pkg="{EXEC}" exec="rt_policy" name="d"><param name="k" value="$(var k)$(var y gone)"/></node></group>""",
    )
    a, b, c, d = load_launch(launch).nodes
    assert (a.namespace, a.params) == ("/robot1", {"x": "in"})
    assert (b.namespace, b.params) == (None, {"x": "out"})
    assert (c.namespace, c.params, c.qualified_name) == ("/abs/sub", {"y": "kept"}, "/abs/sub/c")
    assert (d.namespace, d.params) == (None, {"k": "keptgone"}), "forwarding=false drops all but <keep>"


def test_arguments_listed_like_show_args(tmp_path):
    launch = write(
        tmp_path / "args.launch.xml",
        """<arg name="mode" default="a" description="Mode"><choice value="a"/><choice value="b"/></arg>
  <arg name="needed" description="Needed"/>
  <arg name="maybe" default="$(env HOME)" if="false"/>""",
    )
    assert describe_arguments(launch_arguments(launch)).splitlines() == [
        "Arguments (pass arguments as '<name>:=<value>'):",
        "",
        "    'mode':",
        "        Mode. Valid choices are: ['a', 'b']",
        "        (default: 'a')",
        "",
        "    'needed':",
        "        Needed",
        "",
        "    'maybe':*",
        "        no description given",
        "        (default: EnvVar('HOME'))",
        "",
        "* argument(s) which are only used if specific conditions occur",
    ]
    with pytest.raises(LaunchError, match="missing required argument 'needed'"):
        load_launch(launch)
    with pytest.raises(LaunchError, match='provided value "c" is not valid'):
        load_launch(launch, {"needed": "x", "mode": "c"})
    with pytest.raises(LaunchError, match="no such launch argument"):
        load_launch(launch, {"needed": "x", "mdoe": "b"})


def test_errors_name_the_problem(tmp_path):
    bad = write(tmp_path / "c.launch.xml", f'<node pkg="{EXEC}" exec="e"><param name="x" value="$(var nope)"/></node>')
    with pytest.raises(LaunchError, match="launch configuration 'nope' does not exist"):
        load_launch(bad)
    with pytest.raises(LaunchError, match="not supported by rt-launch"):
        load_launch(write(tmp_path / "d.launch.xml", '<timer period="1"/>'))
    with pytest.raises(LaunchError, match="Unrecognized entity of the type: nonsense"):
        load_launch(write(tmp_path / "e.launch.xml", "<nonsense/>"))
    with pytest.raises(LaunchError, match="invalid condition expression"):
        load_launch(write(tmp_path / "f.launch.xml", f'<node pkg="{EXEC}" exec="e" if="maybe"/>'))
    with pytest.raises(LaunchError, match="Unexpected attribute"):
        load_launch(write(tmp_path / "g.launch.xml", f'<node pkg="{EXEC}" exec="e" colour="red"/>'))
    with pytest.raises(LaunchError, match="package 'no_such_package' not found"):
        load_launch(write(tmp_path / "h.launch.xml", '<node pkg="no_such_package" exec="e"/>'))
    with pytest.raises(LaunchError, match="expected to be shutdown"):
        load_launch(write(tmp_path / "i.launch.xml", f'<node pkg="{EXEC}" exec="e" on_exit="restart"/>'))


def test_includes_that_follow_rejects_are_listed_not_read(tmp_path):
    write(tmp_path / "inner.launch.xml", f'<node pkg="{EXEC}" exec="inner"/>')
    outer = write(
        tmp_path / "outer.launch.xml",
        f"""<arg name="world" default="table.sdf"/>
  <include file="$(find-pkg-share rt_bringup)/launch/gz_sim.launch.py"><arg name="gz_args" value="-r $(var world)"/>
  </include>
  <include file="{tmp_path}/inner.launch.xml"/>""",
    )
    with pytest.raises(LaunchError, match="only XML launch files"):
        load_launch(outer)
    plan = load_launch(outer, follow=lambda file: not file.endswith(".py"))
    assert [n.executable for n in plan.nodes] == ["inner"]
    (include,) = plan.includes
    assert include.file.endswith("/launch/gz_sim.launch.py")
    assert include.arguments == {"gz_args": "-r table.sdf"}


# -- command lines --------------------------------------------------------------------------------


def test_args_split_like_ros2_launch():
    split = command_line(parse_substitutions("-x $(var x) -name 'a b' pre$(var x)post"))
    assert split == [("-x",), (var("x"),), ("-name",), ("a b",), ("pre", var("x"), "post")]


def test_node_command_is_what_ros2_launch_runs(tmp_path):
    launch = write(
        tmp_path / "f.launch.xml",
        f"""<node pkg="{EXEC}" exec="rt_policy" name="n" namespace="ns" args="--flag" on_exit="shutdown">
  <param from="{tmp_path}/n.yaml"/><param name="rate" value="3.5"/><param name="on" value="true"/>
  <remap from="in" to="out"/></node>""",
    )
    (tmp_path / "n.yaml").write_text("n: {ros__parameters: {}}\n")
    spec = load_launch(launch).nodes[0]
    assert spec.shutdown_on_exit
    command = node_command(spec, tmp_path / "e", tmp_path)
    assert command[:7] == [str(tmp_path / "e"), "--flag", "--ros-args", "-r", "__node:=n", "-r", "__ns:=/ns"]
    assert command[7:9] == ["--params-file", f"{tmp_path}/n.yaml"]
    files = [Path(command[10]), Path(command[12])]
    assert [yaml.safe_load(f.read_text()) for f in files] == [
        {"/ns/n": {"ros__parameters": {"rate": 3.5}}},
        {"/ns/n": {"ros__parameters": {"on": True}}},
    ]
    assert command[-2:] == ["-r", "in:=out"]
    assert parse_arguments(["a:=1", "b:=x:=y", "a:=2"]) == {"a": "2", "b": "x:=y"}
    for malformed in ("a=1", ":=1", "a:="):
        with pytest.raises(LaunchError, match="malformed launch argument"):
            parse_arguments([malformed])


def test_missing_parameter_files_are_skipped_with_a_warning(tmp_path):
    launch = write(
        tmp_path / "m.launch.xml", f'<node pkg="{EXEC}" exec="rt_policy"><param from="/no/such.yaml"/></node>'
    )
    plan = load_launch(launch)
    assert plan.nodes[0].parameters == [] and plan.warnings == ["Parameter file path is not a file: /no/such.yaml"]


# -- processes ------------------------------------------------------------------------------------


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
    assert group.children["talker"].running(), "forwarded while the node still runs"
    group.stop(LAUNCH_STOP)
    assert "[talker] half" in capsys.readouterr().out, "a last line without a newline is forwarded at exit"


def test_only_an_on_exit_shutdown_node_stops_the_others(tmp_path):
    """A node without on_exit may exit while the rest keeps running; one with it stops everything."""
    scripts = {name: tmp_path / name for name in ("quits", "stays", "stops")}
    scripts["quits"].write_text("#!/bin/sh\nexit 3\n")
    scripts["stays"].write_text("#!/bin/sh\nexec sleep 60\n")
    scripts["stops"].write_text("#!/bin/sh\nsleep 2\n")
    for script in scripts.values():
        script.chmod(0o755)
    shutdown = {"stops": ' on_exit="shutdown"'}
    nodes = [f'<node exec="{script}" name="{name}"{shutdown.get(name, "")}/>' for name, script in scripts.items()]
    launch = write(tmp_path / "exit.launch.xml", "\n".join(nodes))
    started = time.monotonic()
    result = subprocess.run(["rt-launch", str(launch)], capture_output=True, text=True, timeout=60, env=os.environ)
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "quits (pid" in out and "died with exit code 3" in out
    assert 'stops has on_exit="shutdown": shutting everything down' in out
    assert out.index("died with exit code 3") < out.index("on_exit"), "the others kept running after quits"
    assert time.monotonic() - started < 30, "stays was stopped, not waited for"
