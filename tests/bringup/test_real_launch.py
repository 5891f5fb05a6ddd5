"""rt-launch against upstream ROS 2 launch (launch 3.7.1, launch_ros 0.28.0, from the shared wheels).

Every launch file of the project, and small launch files that exercise include scoping, groups, typed
parameters, conditions and substitutions, is resolved under several argument sets by the real launch
(real_launch.py, without starting processes) and by rt-launch's plan; the nodes, executables, full
command lines (each generated parameter file by its typed content, in order), remaps, arguments, on_exit
and environment must be the same, and so must the errors. `--show-args` and `rt-launch --show` must
print the same argument list.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from ament_index_python.packages import get_package_share_directory

from rt_bringup.launch_substitutions import LaunchContext, LaunchError, parse_substitutions
from rt_bringup.launch_xml import follow_every_include, launch_arguments, load_launch
from rt_bringup.rt_launch import describe_arguments, find_executable, node_command, parse_arguments

BRINGUP = Path(get_package_share_directory("rt_bringup")) / "launch"
GAZEBO = Path(get_package_share_directory("rt_gazebo")) / "launch" / "gazebo.launch.xml"
SIM, ROBOT, RECORD, POLICY_STACK = (
    BRINGUP / f"{name}.launch.xml" for name in ("sim", "robot", "record", "policy_stack")
)
PROFILE = Path(get_package_share_directory("rt_description")) / "profiles" / "generic.yaml"
# Packages gazebo.launch.xml needs that are not installed here, as stand-ins: package -> executables.
STAND_INS = {
    "ros_gz_sim": ["create"],
    "ros_gz_bridge": ["parameter_bridge"],
    "controller_manager": ["spawner"],
    "robot_state_publisher": ["robot_state_publisher"],
}
EMPTY_PYTHON_LAUNCH = (
    "from launch import LaunchDescription\n\n\ndef generate_launch_description():\n    return LaunchDescription([])\n"
)

OVERRIDDEN_SIM = [
    "policy_path:=/tmp/policy",
    "instruction:=yes",
    "task:=drive_to_marker",
    "seed:=7",
    "real_time_factor:=0",
    "record:=true",
    "bag_dir:=123",
    "image_topic:=/cam",
    "robot_state_publisher:=false",
    "use_sim_time:=false",
    "profile:=/tmp/other.yaml",
    "autostart:=false",
]
# (launch file, command-line arguments, environment); every one must resolve the same way under both.
PROJECT_CASES = [
    (SIM, [], {}),
    (SIM, OVERRIDDEN_SIM, {}),
    (SIM, ["instruction:=1", "real_time_factor:=2", "record:=True", "bag_dir:=/tmp/bags"], {}),
    (SIM, ["instruction:=a: b", "seed:=12"], {}),
    (SIM, ["instruction:=pick up the red cube"], {"RT_ROBOT_STATE_PUBLISHER": "false"}),
    # What rt-collect and rt-eval run (rt_bringup.episodes.runner): the expert instead of rt_policy.
    (SIM, ["expert:=true", "image_width:=64", "image_height:=48", "record:=true", "real_time_factor:=0.0"], {}),
    (ROBOT, [f"profile:={PROFILE}"], {}),
    (ROBOT, [f"profile:={PROFILE}", "autostart:=1", "record:=false", "instruction:=no", "image_topic:=/head/rgb"], {}),
    (RECORD, [], {}),
    (RECORD, ["bag_dir:=123", "use_sim_time:=1", "image_topic:=/x"], {}),
    (POLICY_STACK, [], {}),
    (POLICY_STACK, ["record:=true", "autostart:=true", "use_sim_time:=on", "instruction:='quoted'"], {}),
    (POLICY_STACK, ["external_controller:=true"], {}),
    (GAZEBO, [], {}),
    (GAZEBO, ["gui:=false", "x:=1", "y:=-2", "yaw:=0.5", "record:=true", "bag_dir:=9", "instruction:=true"], {}),
]
# (launch file, arguments, environment, what both errors must say).
PROJECT_ERRORS = [
    (ROBOT, [], {}, "missing required argument 'profile'"),
    (SIM, ["record:=maybe"], {}, "invalid condition expression"),
    (SIM, ["seed:=1.5"], {}, "invalid literal for int() with base 10: '1.5'"),
    (SIM, ["image_width:=wide"], {}, "invalid literal for int() with base 10: 'wide'"),
    (SIM, ["real_time_factor:=fast"], {}, "could not convert string to float: 'fast'"),
    (SIM, ["instruction:="], {}, "malformed launch argument 'instruction:='"),
    (SIM, ["robot_state_publisher:=true"], {}, "package 'robot_state_publisher' not found"),
    (GAZEBO, [], {}, "package 'ros_gz_sim' not found"),
]


@pytest.fixture(scope="module")
def stand_ins(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A prefix with stand-ins of STAND_INS: index markers, share dirs, executables that do nothing."""
    # ros_gz_sim's share directory has an empty gz_sim.launch.py.
    prefix = tmp_path_factory.mktemp("stand_ins")
    index = prefix / "share" / "ament_index" / "resource_index" / "packages"
    index.mkdir(parents=True)
    for package, executables in STAND_INS.items():
        (index / package).write_text("")
        (prefix / "share" / package / "launch").mkdir(parents=True)
        (prefix / "lib" / package).mkdir(parents=True)
        for executable in executables:
            path = prefix / "lib" / package / executable
            path.write_text("#!/bin/sh\nexit 0\n")
            path.chmod(0o755)
    (prefix / "share" / "ros_gz_sim" / "launch" / "gz_sim.launch.py").write_text(EMPTY_PYTHON_LAUNCH)
    return prefix


def with_stand_ins(env: dict[str, str], stand_ins: Path) -> dict[str, str]:
    """`env` with the stand-in prefix on AMENT_PREFIX_PATH (RT_ROBOT_STATE_PUBLISHER=true: it is there)."""
    return {
        "AMENT_PREFIX_PATH": f"{stand_ins}{os.pathsep}{os.environ['AMENT_PREFIX_PATH']}",
        "RT_ROBOT_STATE_PUBLISHER": "true",
        **env,
    }


def parameter_argument(path: str, directory: Path) -> dict:
    """A `--params-file` argument as real_launch.py reports it: a file named, or generated content."""
    file = Path(path)
    if file.name.startswith("launch_params_") and file.parent == directory:
        return {"values": yaml.safe_load(file.read_text())}
    return {"file": path}


def rt_resolve(file: Path, argv: list[str], env: dict[str, str], follow: Callable[[str], bool]) -> dict:
    """What rt-launch would start for `file` with `argv`, in real_launch.py's format, or its error."""
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as directory:
        for name, value in env.items():
            patch.setenv(name, value)
        try:
            plan = load_launch(file, parse_arguments(argv), follow=follow)
            nodes = []
            for spec in plan.nodes:
                command: list = node_command(spec, find_executable(spec), Path(directory))
                for index in range(1, len(command)):
                    if command[index - 1] == "--params-file":
                        command[index] = parameter_argument(command[index], Path(directory))
                nodes.append(
                    {
                        "package": spec.package,
                        "executable": spec.executable,
                        "command": command,
                        "shutdown_on_exit": spec.shutdown_on_exit,
                        "env": spec.env,
                    }
                )
        except LaunchError as exc:
            return {"error": str(exc)}
    return json.loads(json.dumps({"nodes": nodes}))


def same(real: dict, ours: dict) -> None:
    """Equal, types included (JSON tells 1, 1.0 and true apart; Python's == does not)."""
    assert json.dumps(ours, indent=1, sort_keys=True) == json.dumps(real, indent=1, sort_keys=True)


def case_id(case: tuple) -> str:
    return f"{Path(case[0]).name}:{' '.join(case[1]) or 'defaults'}{':env' if case[2] else ''}"


@pytest.fixture(scope="module")
def project_answers(real_launch, stand_ins, tmp_path_factory) -> dict:
    """The real launch's answers for every project case (the cases, then the errors), in one run."""
    cases = [(file, argv, with_stand_ins(env, stand_ins)) for file, argv, env in PROJECT_CASES]
    cases += [(file, argv, env) for file, argv, env, _ in PROJECT_ERRORS]
    request = {
        "cases": [{"file": str(file), "argv": argv, "env": env} for file, argv, env in cases],
        "show_args": [str(file) for file in (SIM, ROBOT, RECORD, POLICY_STACK, GAZEBO)],
    }
    return real_launch.resolve(request, tmp_path_factory.mktemp("project"))


@pytest.mark.parametrize("index", range(len(PROJECT_CASES)), ids=lambda i: case_id(PROJECT_CASES[i]))
def test_project_launch_files_resolve_the_same(project_answers, stand_ins, index):
    file, argv, env = PROJECT_CASES[index]
    real = project_answers["cases"][index]
    assert "error" not in real, real["error"]
    ours = rt_resolve(file, argv, with_stand_ins(env, stand_ins), lambda path: not path.endswith(".py"))
    same(real, ours)


@pytest.mark.parametrize("index", range(len(PROJECT_ERRORS)), ids=lambda i: case_id(PROJECT_ERRORS[i]))
def test_project_launch_files_fail_the_same(project_answers, index):
    file, argv, env, message = PROJECT_ERRORS[index]
    real = project_answers["cases"][len(PROJECT_CASES) + index]
    ours = rt_resolve(file, argv, env, follow_every_include)
    assert message in real.get("error", ""), real
    assert message in ours.get("error", ""), ours


@pytest.mark.parametrize("file", [SIM, ROBOT, RECORD, GAZEBO], ids=lambda f: f.name)
def test_docs_list_the_arguments_show_args_prints(project_answers, file):
    """docs/reference/launch.md's "Launch arguments of `X`" names every argument `--show-args` lists, in its order."""
    names = [argument["name"] for argument in project_answers["show_args"][str(file)]["arguments"]]
    page = (Path(__file__).resolve().parents[2] / "docs" / "reference" / "launch.md").read_text()
    heading = f"Launch arguments of `{file.name}`"
    assert heading in page
    paragraph = page.split(heading, 1)[1].split("\n\n", 1)[0]
    listed = list(dict.fromkeys(word for word in re.findall(r"`([^`]+)`", paragraph) if word in names))
    assert listed == names


@pytest.mark.parametrize("file", [SIM, ROBOT, RECORD, POLICY_STACK, GAZEBO], ids=lambda f: f.name)
def test_show_lists_the_arguments_as_show_args_prints_them(project_answers, file):
    assert describe_arguments(launch_arguments(file)) + "\n" == project_answers["show_args"][str(file)]["printed"]


def test_gazebo_fails_only_on_the_gazebo_packages(real_launch, stand_ins, tmp_path):
    """With stand-ins for all but one Gazebo package, both launches fail on that package alone."""
    cases = {}
    for missing in ("ros_gz_sim", "ros_gz_bridge"):
        prefix = tmp_path / f"without_{missing}"
        prefix.mkdir()
        for path in stand_ins.rglob("*"):
            relative = path.relative_to(stand_ins)
            if missing in relative.parts or path.is_dir():
                continue
            (prefix / relative).parent.mkdir(parents=True, exist_ok=True)
            (prefix / relative).symlink_to(path)
        cases[missing] = {"AMENT_PREFIX_PATH": f"{prefix}{os.pathsep}{os.environ['AMENT_PREFIX_PATH']}"}
    request = {"cases": [{"file": str(GAZEBO), "argv": [], "env": env} for env in cases.values()]}
    answers = real_launch.resolve(request, tmp_path)["cases"]
    for (missing, env), real in zip(cases.items(), answers, strict=True):
        ours = rt_resolve(GAZEBO, [], env, lambda path: not path.endswith(".py"))
        assert f"package '{missing}' not found" in real.get("error", ""), real
        assert f"package '{missing}' not found" in ours.get("error", ""), ours


# -- small launch files: one behaviour each -------------------------------------------------------

SCOPING = """<launch>
  <arg name="outer" default="o"/>
  <include file="$(dirname)/sub/inner.launch.xml">
    <arg name="given" value="$(var outer)-given"/>
    <arg name="chained" value="$(var given)+"/>
  </include>
  <node pkg="rt_policy_node" exec="rt_policy" name="after_include">
    <param name="leaked" value="$(var inner_let)" type="str"/>
    <param name="inner_default" value="$(var inner_arg)" type="str"/>
    <param name="dir" value="$(dirname)" type="str"/>
  </node>
  <group>
    <let name="scoped_let" value="inside"/>
    <push-ros-namespace namespace="ns1"/>
    <node pkg="rt_policy_node" exec="rt_policy" name="in_group" namespace="sub">
      <param name="v" value="$(var scoped_let)"/>
    </node>
  </group>
  <node pkg="rt_policy_node" exec="rt_policy" name="after_group">
    <param name="v" value="$(var scoped_let 'gone')"/>
  </node>
  <group scoped="false"><let name="unscoped" value="kept"/><push_ros_namespace namespace="/abs"/></group>
  <node pkg="rt_policy_node" exec="rt_policy" name="after_unscoped"><param name="v" value="$(var unscoped)"/></node>
  <group forwarding="false">
    <keep name="k" value="$(var outer)"/>
    <node pkg="rt_policy_node" exec="rt_policy" name="not_forwarded">
      <param name="k" value="$(var k)"/><param name="outer" value="$(var outer none)"/>
    </node>
  </group>
  <arg name="flag" default="true"/>
  <group if="$(var flag)"><arg name="in_conditional_group" default="x"/></group>
</launch>
"""
INNER = """<launch>
  <arg name="given" default="ignored"/>
  <arg name="inner_arg" default="inner-default"/>
  <arg name="from_cli" default="inner-cli-default"/>
  <let name="inner_let" value="$(var given)/$(var chained)"/>
  <node pkg="rt_policy_node" exec="rt_action_executor" name="inner_node">
    <param name="from_cli" value="$(var from_cli)" type="str"/>
    <param name="here" value="$(dirname)" type="str"/>
    <param name="file" value="$(filename)" type="str"/>
  </node>
</launch>
"""
PARAMS = """<launch>
  <arg name="v" default="3"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="typed" args="--flag $(var v) 'two words' x$(var v)y"
        ros_args="--log-level info" exec_name="typed_process" output="screen" on_exit="shutdown">
    <param from="$(find-pkg-share rt_bringup)/config/policy.yaml"/>
    <param name="int_literal" value="3"/>
    <param name="float_literal" value="0.5"/>
    <param name="bool_literal" value="yes"/>
    <param name="str_literal" value="a: b: c"/>
    <param name="empty" value=""/>
    <param name="list_literal" value="[1, 2, 3]"/>
    <param name="from_var" value="$(var v)"/>
    <param name="from_var_str" value="$(var v)" type="str"/>
    <param name="from_var_yaml" value="$(var v)" type="yaml"/>
    <param name="as_int" value="7" type="int"/>
    <param name="as_float" value="7" type="float"/>
    <param name="as_bool" value="1" type="bool"/>
    <param name="list_of_str" value="[a, $(var v)]" type="list_of_str"/>
    <param name="escaped" value="a\\b \\$(var v)"/>
    <param name="group">
      <param name="nested" value="1"/><param name="deeper"><param name="x" value="on"/></param>
    </param>
    <param from="/does/not/exist.yaml"/>
    <remap from="a" to="$(var v)"/>
    <env name="RT_TEST_ENV" value="$(var v)"/>
  </node>
  <node pkg="rt_policy_node" exec="rt_policy" name="named" namespace="ns"><param name="x" value="1"/></node>
  <node pkg="rt_policy_node" exec="rt_policy" namespace="only_ns" args="  $(var v)"/>
</launch>
"""
LOGIC = """<launch>
  <arg name="flag" default="true"/>
  <arg name="n" default="1"/>
  <arg name="mode" default="a" description="Mode"><choice value="a"/><choice value="b"/></arg>
  <node pkg="rt_policy_node" exec="rt_policy" name="c1" if="$(var flag)"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="c2" unless="$(var flag)"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="c3" if="$(not $(var flag))"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="c4" if="$(and $(var flag) $(equals $(var n) 1.0))"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="c5" if="$(or false $(not-equals $(var n) 2))"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="c6" if=" TRUE "/>
  <node pkg="rt_policy_node" exec="rt_policy" name="c7">
    <param name="if" value="$(if $(var flag) 'yes branch' no-branch)" type="str"/>
    <param name="cmd" value="$(command 'printf \\'%s|\\' \\'a  b\\' $(var n)')" type="str"/>
    <param name="eq_empty" value="$(equals '' '')"/>
    <param name="prefix" value="$(find-pkg-prefix rt_bringup)" type="str"/>
    <param name="content" value="$(file-content $(find-pkg-share rt_bringup)/config/sim.yaml)" type="str"/>
    <param name="exec" value="$(exec-in-pkg rt_policy rt_policy_node)" type="str"/>
    <param name="mode" value="$(var mode)"/>
  </node>
</launch>
"""
REQUIRED = """<launch>
  <arg name="needed" description="Needed"/>
  <arg name="optional" default="o" if="$(var needed)"/>
  <include file="$(dirname)/inner_required.launch.xml"><arg name="inner_needed" value="$(var needed)"/></include>
</launch>
"""
INNER_REQUIRED = """<launch>
  <arg name="inner_needed"/>
  <node pkg="rt_policy_node" exec="rt_policy" name="r"><param name="x" value="$(var inner_needed)"/></node>
</launch>
"""
SMALL_FILES = {
    "scoping.launch.xml": SCOPING,
    "sub/inner.launch.xml": INNER,
    "params.launch.xml": PARAMS,
    "logic.launch.xml": LOGIC,
    "required.launch.xml": REQUIRED,
    "inner_required.launch.xml": INNER_REQUIRED,
}
# (file, arguments, what both errors must say, or None: both resolve to the same nodes).
SMALL_CASES = [
    ("scoping", [], None),
    ("scoping", ["from_cli:=cli", "outer:=X", "inner_arg:=Y", "given:=Z", "flag:=false"], None),
    ("params", [], None),
    ("params", ["v:=hello"], None),
    ("params", ["v:=true"], None),
    ("params", ["v:=2.5"], None),
    ("params", ["v:=a: b"], "Failed to convert 'a: b' using yaml rules: output type is not allowed"),
    ("params", ["v:="], "malformed launch argument 'v:='"),
    ("logic", [], None),
    ("logic", ["flag:=false", "n:=2", "mode:=b"], None),
    ("logic", ["flag:=yes"], "invalid condition expression, expected one of [true, 1, false, 0] but got 'yes'"),
    ("logic", ["flag:=1", "n:=1e0"], None),
    ("logic", ["mode:=c"], """Argument "mode" provided value "c" is not valid. Valid options are: ['a', 'b']"""),
    ("required", ["needed:=true"], None),
    ("required", [], "Included launch description missing required argument 'needed' (description: 'Needed')"),
    ("required", ["needed:=maybe"], "but got 'maybe'"),
]


@pytest.fixture(scope="module")
def small_files(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("small")
    for name, text in SMALL_FILES.items():
        (directory / name).parent.mkdir(exist_ok=True)
        (directory / name).write_text(text)
    return directory


@pytest.fixture(scope="module")
def small_answers(real_launch, small_files) -> dict:
    request = {
        "cases": [{"file": str(small_files / f"{name}.launch.xml"), "argv": argv} for name, argv, _ in SMALL_CASES],
        "show_args": [str(small_files / f"{name}.launch.xml") for name in ("scoping", "logic", "required")],
    }
    return real_launch.resolve(request, small_files)


@pytest.mark.parametrize("index", range(len(SMALL_CASES)), ids=lambda i: f"{SMALL_CASES[i][0]}:{SMALL_CASES[i][1]}")
def test_small_launch_files_resolve_the_same(small_answers, small_files, index):
    name, argv, message = SMALL_CASES[index]
    real = small_answers["cases"][index]
    ours = rt_resolve(small_files / f"{name}.launch.xml", argv, {}, follow_every_include)
    if message is None:
        same(real, ours)
    else:
        assert message in real.get("error", ""), real
        assert message in ours.get("error", ""), ours


@pytest.mark.parametrize("name", ["scoping", "logic", "required"])
def test_small_launch_files_list_the_same_arguments(small_answers, small_files, name):
    file = small_files / f"{name}.launch.xml"
    assert describe_arguments(launch_arguments(file)) + "\n" == small_answers["show_args"][str(file)]["printed"]


# -- the substitution grammar ---------------------------------------------------------------------

CONFIGURATIONS = {"x": "X", "a b": "AB", "x)": "paren", "'a": "quote-a", "empty": ""}
TEXTS = [
    "plain",
    "a\\b",
    "a\\\\b",
    "\\$(var x)",
    "\\\\$(var x)",
    "$(var x)",
    "$(var 'x')",
    '$(var "a b")',
    "$(env RT_NO_SUCH_VARIABLE '')",
    "$(env RT_NO_SUCH_VARIABLE)",
    "$(var nope 'default value')",
    "$(var x)$(var x)",
    "a $(var x) b",
    "$(var x\\))",
    "$(var 'a b')",
    "'quoted'",
    '"double"',
    "$(var nope 'it\\'s')",
    '$(var nope "say \\"hi\\"")',
    '$(var nope "it\'s")',
    "$(command 'echo $(var x)')",
    "$(command \"printf '%s' 'a  b'\")",
    "$(equals $(var x) X)",
    "$(if $(equals $(var x) X) 'yes it is' no)",
    "$(not-equals a b)",
    "$(var 'x')-$(var \"x\")",
    "$ (var x)",
    "$$(var x)",
    "a)b",
    "(a)",
    "$(var  x)",
    "$(var x ",
    "$(var x",
    "$(var 'x)",
    "$(optenv X)",
    "$(var)",
    "$(not '')",
    "$(not $(var empty))",
    "$(equals '' '')",
    "$(equals $(var empty) '')",
    "$(dirname x)",
    "$(find-pkg-share rt_bringup)",
    "$(var nope 'nested $(var x) inside')",
    "$(var nope \"nested $(var 'a b') in double\")",
    "$(var nope a\\ b)",
    "$(var nope \\(x\\))",
    "$(var nope x'y')",
    "$(var nope 'x'y)",
    "$(var nope $(var x)$(var x))",
    "$(var nope '')",
    "$(var '')",
    "$(not yes)",
    "$(not On)",
    "$(and 1 $(not 0))",
    "$(or false maybe)",
    "$(equals 1.0 1)",
    "$(equals True 1)",
    "$(equals nan nan)",
    "$(if false a)",
]


def test_substitutions_parse_and_evaluate_as_the_frontend_grammar(real_launch, tmp_path):
    answers = real_launch.resolve({"perform": {"configurations": CONFIGURATIONS, "texts": TEXTS}}, tmp_path)
    differences = []
    for text, real in zip(TEXTS, answers["perform"], strict=True):
        context = LaunchContext()
        context.configurations.update(CONFIGURATIONS)
        try:
            ours = {"value": context.perform(parse_substitutions(text))}
        except LaunchError as exc:
            ours = {"error": str(exc)}
        if ("error" in real) != ("error" in ours) or real.get("value") != ours.get("value"):
            differences.append(f"{text!r}: real {real}, rt-launch {ours}")
    assert not differences, "\n".join(differences)


def test_substitutions_outside_the_subset_are_real_ones(real_launch, tmp_path):
    """rt-launch refuses these with its own message; the real launch knows them (it may still fail later)."""
    texts = ["$(eval '1 + 1')", "$(anon node)", "$(log_dir)"]
    answers = real_launch.resolve({"perform": {"texts": texts}}, tmp_path)["perform"]
    for text, real in zip(texts, answers, strict=True):
        assert "Unknown substitution" not in real.get("error", ""), real
        with pytest.raises(LaunchError, match="not supported by rt-launch"):
            parse_substitutions(text)
