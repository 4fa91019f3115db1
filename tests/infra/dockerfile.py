"""A small Dockerfile reader for the image tests (no Docker engine here): instructions grouped by stage.

Handles what the project's Dockerfile uses: comments and parser directives, ``\\`` line continuations,
``--flag=value`` options, JSON (exec) form arguments, and ``FROM image AS name``. It is not a full
BuildKit parser (no heredocs, no escape-directive changes) and fails loudly on what it does not know.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field

KNOWN = {
    "FROM", "RUN", "CMD", "LABEL", "EXPOSE", "ENV", "ADD", "COPY", "ENTRYPOINT", "VOLUME", "USER",
    "WORKDIR", "ARG", "ONBUILD", "STOPSIGNAL", "HEALTHCHECK", "SHELL",
}  # fmt: skip

# Compilers and build tool packages/commands that must not be in the runtime stage.
BUILD_TOOLS = (
    "build-essential", "gcc", "g++", "clang", "make", "cmake", "cc", "cpp", "libc6-dev",
    "python3-dev", "rustc", "cargo", "autoconf", "automake", "libtool", "pkg-config",
)  # fmt: skip

_FLAG = re.compile(r"^--([a-z-]+)(?:=(\S*))?\s*")


class DockerfileError(ValueError):
    pass


@dataclass
class Instruction:
    keyword: str
    args: str  # the argument text after the flags
    flags: dict[str, str] = field(default_factory=dict)
    line: int = 0

    def exec_form(self) -> list[str] | None:
        """The JSON array form of CMD/ENTRYPOINT/RUN/VOLUME, or None for the shell form."""
        text = self.args.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DockerfileError(f"line {self.line}: invalid JSON form: {text}") from exc
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise DockerfileError(f"line {self.line}: JSON form must be an array of strings")
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def env(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for ins in self.all("ENV"):
            for token in shlex.split(ins.args):
                if "=" not in token:
                    raise DockerfileError(f"line {ins.line}: use ENV key=value (legacy form not supported)")
                key, value = token.split("=", 1)
                out[key] = value
        return out


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join continuation lines; drop comments and blank lines. Returns (first line number, text)."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        stripped = raw.strip()
        if stripped.startswith("#"):
            # Comment lines (and parser directives) are removed, even inside a continuation.
            continue
        if not buf:
            if not stripped:
                continue
            start = number
        if stripped.endswith("\\"):
            buf.append(stripped[:-1].strip())
            continue
        buf.append(stripped)
        out.append((start, " ".join(part for part in buf if part)))
        buf = []
    if buf:
        raise DockerfileError(f"line {start}: dangling line continuation at end of file")
    return out


def parse(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for number, line in logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword not in KNOWN:
            raise DockerfileError(f"line {number}: unknown instruction {keyword}")
        flags: dict[str, str] = {}
        rest = rest.strip()
        while (m := _FLAG.match(rest)) is not None:
            flags[m.group(1)] = m.group(2) or ""
            rest = rest[m.end() :]
        ins = Instruction(keyword, rest, flags, number)
        if keyword == "FROM":
            parts = rest.split()
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            if len(parts) not in (1, 3) or (len(parts) == 3 and name is None):
                raise DockerfileError(f"line {number}: FROM image [AS name]")
            stages.append(Stage(base=parts[0], name=name))
            continue
        if not stages:
            if keyword == "ARG":
                continue  # ARG before the first FROM
            raise DockerfileError(f"line {number}: {keyword} before FROM")
        stages[-1].instructions.append(ins)
    if not stages:
        raise DockerfileError("no FROM instruction")
    return stages


def healthcheck_argv(ins: Instruction) -> list[str]:
    """The exec-form command of ``HEALTHCHECK [options] CMD ["prog", "arg", ...]``.

    Exec form only: it needs no /bin/sh in the image and leaves no shell quoting to get wrong."""
    keyword, _, command = ins.args.partition(" ")
    if keyword.upper() != "CMD":
        raise DockerfileError(f"line {ins.line}: HEALTHCHECK must be followed by CMD (or NONE)")
    argv = Instruction("CMD", command.strip(), line=ins.line).exec_form()
    if argv is None:
        raise DockerfileError(f"line {ins.line}: use the JSON (exec) form for the HEALTHCHECK command")
    return argv


def build_tool_mentions(stage: Stage) -> list[str]:
    """Build tools installed (apt/apk/yum/dnf/pip) or invoked in the stage's RUN instructions."""
    found = []
    for ins in stage.all("RUN"):
        words = set(re.split(r"[\s;&|()]+", ins.args))
        for tool in BUILD_TOOLS:
            if tool in words:
                found.append(f"line {ins.line}: {tool}")
    return found


def user_is_non_root_numeric(user: str) -> bool:
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or int(uid) == 0:
        return False
    return gid == "" or (gid.isdigit() and int(gid) != 0)
