"""Substitutions of ROS 2 launch's XML frontend for rt-launch: the `$(...)` syntax, what each one evaluates to.

The syntax is the frontend grammar's (launch 3.7, the same in Humble, Jazzy and Kilted): a substitution is
`$(name arg arg ...)` with exactly one space between arguments; an argument is unquoted text, or a `'...'`
or `"..."` string in which spaces and parentheses are plain text; substitutions nest in both. A `$` right
after a backslash is plain text, and in every piece of text a backslash escapes the character after it
(`\\(` is `(`, `\\'` is `'`; `a\\b` is `ab`). Names are checked when a file is read, before anything runs:
an unknown one is refused with the real launch's `Unknown substitution: NAME`, and a real one outside this
subset (`eval`, `anon`, `param`, `log_dir`) with a message saying so.
"""

from __future__ import annotations

import math
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from rt_bringup.launch_types import BOOL, coerce


class LaunchError(Exception):
    """A launch file rt-launch cannot interpret, or arguments it cannot satisfy: nothing is started."""


@dataclass(frozen=True)
class Substitution:
    """One `$(kind arg ...)`; each argument is a sequence of text and nested substitutions."""

    kind: str
    args: tuple[Parts, ...]


Part = str | Substitution
Parts = tuple[Part, ...]

# Arguments each substitution takes (least, most) and the real launch's message otherwise.
ARITY: dict[str, tuple[int, int, str]] = {
    "var": (1, 2, "var substitution expects 1 or 2 arguments"),
    "env": (1, 2, "env substitution expects 1 or 2 arguments"),
    "command": (1, 2, "command substitution expects 1 or 2 arguments"),
    "find-pkg-share": (1, 1, "find package substitutions expect 1 argument"),
    "find-pkg-prefix": (1, 1, "find package substitutions expect 1 argument"),
    "exec-in-pkg": (2, 2, "exec-in-package substitution expects 2 arguments"),
    "find-exec": (1, 1, "find-exec substitution expects 1 argument"),
    "file-content": (1, 1, "file content substitutions expect 1 argument"),
    "not": (1, 1, "not substitution expects 1 argument"),
    # The real launch names `and` in the messages of `or`, `equals` and `not-equals` too.
    "and": (2, 2, "and substitution expects 2 arguments"),
    "or": (2, 2, "and substitution expects 2 arguments"),
    "if": (2, 3, "if substitution expects from 2 or 3 arguments"),
    "equals": (2, 2, "and substitution expects 2 arguments"),
    "not-equals": (2, 2, "and substitution expects 2 arguments"),
    "dirname": (0, 0, "dirname substitution doesn't expect arguments"),
    "filename": (0, 0, "filename substitution doesn't expect arguments"),
}
# Substitutions the real launch has and rt-launch leaves to it: Python expressions, random names, a running
# node's parameters, the launch log directory.
OUTSIDE_SUBSET = ("eval", "anon", "param", "log_dir", "launch_log_dir")
# Substitutions the real XML frontend names but cannot build (launch 3.7 passes their arguments wrongly).
BROKEN = {"any": "AnySubstitution", "all": "AllSubstitution"}

_IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
_ESCAPE = re.compile(r"\\(.)")

# Where a piece of text is: the attribute itself, an unquoted argument, an argument of a substitution inside
# a single- or double-quoted string, or the quoted string itself.
_TOP, _ARG, _ARG_IN_SINGLE, _ARG_IN_DOUBLE, _SINGLE, _DOUBLE = range(6)
_QUOTE = {_ARG_IN_SINGLE: "'", _ARG_IN_DOUBLE: '"', _SINGLE: "'", _DOUBLE: '"'}
# Quotes a backslash takes with it as one escape in each kind of text.
_PAIRED = {_ARG: "'\"", _ARG_IN_SINGLE: "'", _ARG_IN_DOUBLE: '"', _SINGLE: "'", _DOUBLE: '"'}


def unescape(text: str) -> str:
    """Drops the backslash of every `\\x` (the frontend's escapes in names, descriptions and text)."""
    return _ESCAPE.sub(r"\1", text)


class _Reader:
    """Recursive descent over one attribute value, taking each piece of text as far as the grammar allows."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def error(self, expected: str) -> LaunchError:
        """A syntax error at the current position."""
        return LaunchError(
            f"invalid substitution syntax in {self.text!r} at column {self.pos + 1}: expected {expected}"
        )

    def peek(self, char: str) -> bool:
        """Whether the text continues with `char`."""
        return self.text.startswith(char, self.pos)

    def at_substitution(self) -> bool:
        """Whether a substitution opens here: `$(` not right after a backslash."""
        return self.peek("$(") and not (self.pos > 0 and self.text[self.pos - 1] == "\\")

    def take(self, mode: int) -> int:
        """How many characters at the position belong to the text of `mode` (0: the text ends here)."""
        text, i = self.text, self.pos
        char = text[i]
        escaped = i > 0 and text[i - 1] == "\\"
        if char == "$":
            return 1 if escaped or not text.startswith("(", i + 1) else 0
        if mode == _TOP:
            return 1
        if char == "\\":
            return 2 if text[i + 1 : i + 2] and text[i + 1] in _PAIRED[mode] else 1
        if mode in (_SINGLE, _DOUBLE):
            return 0 if char == _QUOTE[mode] else 1
        if char in "()":
            return 1 if escaped else 0
        if char == " ":
            return 0
        if char in "'\"":
            return 0 if mode == _ARG or char == _QUOTE[mode] else 1
        return 1

    def run(self, mode: int) -> str:
        """The longest piece of text of `mode` from here, as written (escapes not yet resolved)."""
        start = self.pos
        while self.pos < len(self.text) and (step := self.take(mode)):
            self.pos += step
        return self.text[start : self.pos]

    def template(self) -> list[Part]:
        """A whole attribute value: text and substitutions."""
        parts: list[Part] = []
        while self.pos < len(self.text):
            parts.append(self.substitution(_ARG) if self.at_substitution() else unescape(self.run(_TOP)))
        return parts

    def substitution(self, mode: int) -> Substitution:
        """`$(name arg ...)`: arguments separated by exactly one space."""
        self.pos += 2
        name = _IDENTIFIER.match(self.text, self.pos)
        if name is None:
            raise self.error("a substitution name")
        self.pos = name.end()
        args = []
        while self.peek(" "):
            self.pos += 1
            args.append(self.value(mode))
        if not self.peek(")"):
            raise self.error("')'")
        self.pos += 1
        return Substitution(name.group(), tuple(args))

    def value(self, mode: int) -> Parts:
        """One argument: a quoted string, or text and substitutions up to a space or `)`."""
        if mode == _ARG and (self.peek("'") or self.peek('"')):
            return self.quoted(_SINGLE if self.peek("'") else _DOUBLE)
        parts: list[Part] = []
        while self.pos < len(self.text):
            if self.at_substitution():
                parts.append(self.substitution(mode))
            elif text := self.run(mode):
                parts.append(unescape(text))
            else:
                break
        if not parts:
            raise self.error("an argument")
        return tuple(parts)

    def quoted(self, mode: int) -> Parts:
        """A `'...'` or `"..."` argument, in which substitutions may nest."""
        quote, inner = _QUOTE[mode], _ARG_IN_SINGLE if mode == _SINGLE else _ARG_IN_DOUBLE
        self.pos += 1
        parts: list[Part] = []
        while not self.peek(quote):
            if self.pos >= len(self.text):
                raise self.error(quote)
            parts.append(self.substitution(inner) if self.at_substitution() else unescape(self.run(mode)))
        self.pos += 1
        return tuple(parts)


def parse_substitutions(text: str) -> Parts:
    """`text` as text and substitutions; LaunchError on bad syntax or a substitution rt-launch cannot run."""
    if not text:
        return ("",)
    parts = tuple(_Reader(text).template())
    _check(parts)
    return parts


def _check(parts: Sequence[Part]) -> None:
    """Refuses, innermost first, unknown substitutions, ones outside the subset and wrong argument counts."""
    for part in parts:
        if isinstance(part, str):
            continue
        for arg in part.args:
            _check(arg)
        if part.kind in OUTSIDE_SUBSET:
            raise LaunchError(f"$({part.kind} ...) is not supported by rt-launch; use ros2 launch")
        if part.kind in BROKEN:
            raise LaunchError(f"{BROKEN[part.kind]}.__init__() got an unexpected keyword argument 'args'")
        if part.kind not in ARITY:
            raise LaunchError(f"Unknown substitution: {part.kind}")
        least, most, message = ARITY[part.kind]
        if not least <= len(part.args) <= most:
            raise LaunchError(message)


def text_or_parts(text: str) -> str | Parts:
    """The text itself when it holds no substitution (escapes resolved), else its parts."""
    parts = parse_substitutions(text)
    return parts[0] if len(parts) == 1 and isinstance(parts[0], str) else parts


_DESCRIBED = {
    "var": "LaunchConfig",
    "env": "EnvVar",
    "command": "Command",
    "find-exec": "FindExec",
    "file-content": "FileContent",
    "dirname": "ThisLaunchFileDir",
    "filename": "ThisLaunchFile",
}


def describe(parts: Sequence[Part]) -> str:
    """How `ros2 launch --show-args` prints a value: `'text' + LaunchConfig('x') + ...`."""
    return " + ".join(_describe_one(part) for part in parts)


def _describe_one(part: Part) -> str:
    """One part as the real substitution classes describe themselves."""
    if isinstance(part, str):
        return f"'{part}'"
    first = describe(part.args[0]) if part.args else ""
    if part.kind in ("find-pkg-share", "find-pkg-prefix"):
        return f"FindPackage{'Share' if part.kind.endswith('share') else 'Prefix'}(pkg={first})"
    if part.kind == "exec-in-pkg":
        return f"ExecInPkg(pkg={describe(part.args[1])}, exec={first})"
    if part.kind in _DESCRIBED:
        return f"{_DESCRIBED[part.kind]}({first})"
    return f"{part.kind}({', '.join(describe(arg) for arg in part.args)})"


PackagePrefix = Callable[[str], str]


def ament_package_prefix(package: str) -> str:
    """The install prefix of `package` from the ament index, failing with the real launch's message."""
    from ament_index_python.packages import PackageNotFoundError, get_package_prefix

    try:
        return get_package_prefix(package)
    except (PackageNotFoundError, ValueError) as exc:
        raise LaunchError(exc.args[0]) from exc


def _yaml_bool(text: str) -> bool:
    """A boolean argument of `not`, `and`, `if`, ...: YAML's booleans, `1` and `0`."""
    try:
        return coerce(text, BOOL, lenient=False)
    except ValueError as exc:
        raise LaunchError(str(exc)) from exc


def _is_bool_text(text: str) -> bool:
    """Whether `equals` compares `text` as a boolean."""
    return text.lower() in ("true", "false", "1", "0")


def _is_float_text(text: str) -> bool:
    """Whether `equals` compares `text` as a number."""
    try:
        float(text)
    except ValueError:
        return False
    return True


class LaunchContext:
    """What substitutions read: launch configurations, the launch file being read, where packages are."""

    def __init__(self, package_prefix: PackagePrefix = ament_package_prefix) -> None:
        self.configurations: dict[str, str] = {}
        self.package_prefix = package_prefix
        # Set by each include and never restored, as in the real launch: after an <include>, $(dirname) and
        # $(filename) in the including file name the included one.
        self.current_file: str | None = None
        self.current_dir: str | None = None

    def perform(self, parts: Sequence[Part]) -> str:
        """Evaluates `parts` to a string."""
        return "".join(part if isinstance(part, str) else self._evaluate(part) for part in parts)

    def truth(self, parts: Sequence[Part]) -> bool:
        """An argument of a boolean substitution as a boolean (an empty quoted string is not one)."""
        if not parts:
            raise LaunchError(
                "The input value is a list, cannot convert it to a scalar. "
                "Got value='[]', expected type <class 'bool'>."
            )
        return _yaml_bool(self.perform(parts))

    def _evaluate(self, sub: Substitution) -> str:
        """One substitution's value."""
        kind, args = sub.kind, sub.args
        if kind == "var":
            name = self.perform(args[0])
            if name in self.configurations:
                return self.configurations[name]
            if len(args) == 2:
                return self.perform(args[1])
            raise LaunchError(f"launch configuration '{name}' does not exist")
        if kind == "env":
            default = self.perform(args[1]) if len(args) == 2 else None
            name = self.perform(args[0])
            value = os.environ.get(name, default)
            if value is None:
                raise LaunchError(f"environment variable '{name}' does not exist")
            return value
        if kind in ("find-pkg-share", "find-pkg-prefix"):
            package = self.perform(args[0])
            prefix = self.package_prefix(package)
            return os.path.join(prefix, "share", package) if kind == "find-pkg-share" else prefix
        if kind == "exec-in-pkg":
            package = self.perform(args[1])
            return executable_in_package(self.perform(args[0]), package, self.package_prefix(package))
        if kind == "find-exec":
            name = self.perform(args[0])
            found = shutil.which(name)
            if found is None:
                raise LaunchError(f"executable '{name}' not found on the PATH")
            return found
        if kind == "file-content":
            path = self.perform(args[0])
            try:
                with open(path) as stream:
                    return stream.read()
            except FileNotFoundError as exc:
                raise LaunchError(f"File not found: {path}") from exc
        if kind == "command":
            return self._command(args)
        if kind in ("dirname", "filename"):
            where = self.current_dir if kind == "dirname" else self.current_file
            if where is None:
                name = "ThisLaunchFileDir" if kind == "dirname" else "ThisLaunchFile"
                raise LaunchError(f"{name} used outside of a launch file (in a script)")
            return where
        return self._logic(kind, args)

    def _logic(self, kind: str, args: tuple[Parts, ...]) -> str:
        """The boolean substitutions and comparisons; their results are `true` or `false`."""
        if kind == "not":
            return str(not self.truth(args[0])).lower()
        if kind == "and":
            return str(self.truth(args[0]) and self.truth(args[1])).lower()
        if kind == "or":
            return str(self.truth(args[0]) or self.truth(args[1])).lower()
        if kind == "if":
            return self.perform(args[1] if self.truth(args[0]) else (args[2] if len(args) == 3 else ()))
        # equals / not-equals: an empty quoted string compares as the text `[]`, as in the real launch.
        left, right = (self.perform(arg) if arg else "[]" for arg in args)
        if _is_bool_text(left) and _is_bool_text(right):
            same = (left.lower() in ("true", "1")) == (right.lower() in ("true", "1"))
        elif _is_float_text(left) and _is_float_text(right):
            same = math.isclose(float(left), float(right))
        else:
            same = left == right
        return str(same if kind == "equals" else not same).lower()

    def _command(self, args: tuple[Parts, ...]) -> str:
        """Runs the command (split like a shell would, no shell) and returns its standard output."""
        command = self.perform(args[0])
        on_stderr = self.perform(args[1]) if len(args) == 2 else "fail"
        if on_stderr not in ("fail", "ignore", "warn", "capture"):
            raise LaunchError("expected 'on_stderr' to be one of: 'fail', 'ignore', 'warn' or 'capture'")
        stderr = subprocess.STDOUT if on_stderr == "capture" else subprocess.PIPE
        try:
            result = subprocess.run(shlex.split(command), stdout=subprocess.PIPE, stderr=stderr, text=True)
        except FileNotFoundError as exc:
            raise LaunchError(f"file not found: {exc}") from exc
        if result.returncode != 0:
            message = f"executed command failed. Command: {command}"
            if result.stderr:
                message += f"\nCaptured stderr output: {result.stderr}"
            raise LaunchError(message)
        if result.stderr:
            message = (
                f"executed command showed stderr output. Command: {command}\nCaptured stderr output:\n{result.stderr}"
            )
            if on_stderr == "fail":
                raise LaunchError(message)
            if on_stderr == "warn":
                print(f"[rt-launch] WARNING: {message}", file=sys.stderr, flush=True)
        return result.stdout


def executable_in_package(executable: str, package: str, prefix: str) -> str:
    """Where `ros2 run package executable` finds it: `<prefix>/lib/<package>/`, with the real launch's errors."""
    libexec = os.path.join(prefix, "lib", package)
    if not os.path.exists(libexec):
        raise LaunchError(f"package '{package}' found at '{prefix}', but libexec directory '{libexec}' does not exist")
    found = shutil.which(executable, path=libexec)
    if found is None:
        raise LaunchError(f"executable '{executable}' not found on the libexec directory '{libexec}' ")
    return found
