"""Policy bypasses: what the policy checked must be exactly what the container runs.

Two splitters run the text in production: ``sh`` (after ``bot.exit_sentinel`` wraps it, when the service
has a shell) and the ECS agent's Go ``google/shlex`` (when it has none). Globs are expanded by the shell
in the container's working directory, which the policy knows nothing about.
"""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.commands import ExecRequest, parse_command_text
from bot.exit_sentinel import ExitSentinel
from bot.policy import evaluate
from bot.shell_syntax import parse_pipeline
from tests.policy.rulesets import ONCALL_REQUEST, permissive, typed
from tests.support.commands import accepted_pipeline

POLICY = permissive()
# Every bypass below is tried under today's string globs and under the typed forms.
POLICIES = {"globs": POLICY, "typed": typed()}


@pytest.fixture(params=sorted(POLICIES))
def policy_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def decide(command: str, policy_name: str = "globs", **over: Any):  # noqa: ANN201
    return evaluate(POLICIES[policy_name], **{**ONCALL_REQUEST, "command": command, **over})


# --- a glob the user typed expands to several words -----------------------------------------------------

@pytest.mark.parametrize("command", [
    "grep s* /var/log/nginx/access.log",  # -> grep secrets.yml settings.py /var/log/nginx/access.log
    "grep ?ecret* /var/log/nginx/access.log",
    "tail -n 1* /var/log/nginx/access.log",
    "awk x* /var/log/nginx/access.log",
])
def test_a_glob_before_the_last_argument_is_refused(command: str, policy_name: str) -> None:
    decision = decide(command, policy_name)
    assert not decision.allowed and decision.refusal is not None
    if policy_name == "typed" and decision.refusal.category == "no-match":
        # `{int: …}` never takes a glob at all (`1*` is no number): refused as no match, naming the word.
        assert decision.refusal.closest is not None and "*`" in decision.refusal.closest.given, decision.reason
    else:
        assert decision.refusal.category == "glob", decision.reason


def test_the_refused_grep_really_reads_files_of_the_working_directory(tmp_path: Path) -> None:
    """Why: under sh, the search-term glob becomes file operands (files outside the allowed directory)."""
    (tmp_path / "secrets.yml").write_text("password=hunter2\n")
    (tmp_path / "settings.py").write_text("x\n")
    out = subprocess.run(["sh", "-c", "printf '%s\\n' s* /var/log/nginx/access.log"], cwd=tmp_path,
                         capture_output=True, text=True, check=True).stdout.split()
    assert out == ["secrets.yml", "settings.py", "/var/log/nginx/access.log"]


@pytest.mark.parametrize("command", ["s? /var/log/nginx/access.log", "py*3 /var/log/nginx/access.log",
                                     "c?t /var/log/nginx/access.log"])
def test_a_glob_in_the_program_name_is_refused(command: str, policy_name: str) -> None:
    """`["*", "/var/log/nginx/*"]` allows any program name, but `s?` is whatever the cwd holds (`sh`)."""
    decision = decide(command, policy_name)
    assert not decision.allowed and decision.refusal is not None
    assert decision.refusal.category == "glob", decision.reason


@pytest.mark.parametrize("command", [
    "cat /var/log/nginx/*", "cat /var/log/nginx/*.log", "grep foo /var/log/nginx/*",
    "tail -n 100 /var/log/nginx/*.log", "grep 'a*' /var/log/nginx/access.log", "ls /var/log/*",
])
def test_globs_in_the_last_argument_still_work(command: str, policy_name: str) -> None:
    assert decide(command, policy_name).allowed, decide(command, policy_name).reason


# --- a container without a shell: the agent splits with google/shlex ------------------------------------

def google_shlex_split(text: str) -> list[str]:
    """github.com/google/shlex Split, as the ECS agent uses it in container mode (shell_unix.go): inside
    double quotes a backslash escapes *any* character."""
    words: list[str] = []
    i, n = 0, len(text)
    while i < n:
        while i < n and text[i] in " \t\r\n":
            i += 1
        if i >= n:
            break
        if text[i] == "#":  # a comment to the end of the line
            while i < n and text[i] != "\n":
                i += 1
            continue
        value: list[str] = []
        while i < n and text[i] not in " \t\r\n":
            ch = text[i]
            if ch == "\\":
                value.append(text[i + 1])
                i += 2
            elif ch == "'":
                end = text.index("'", i + 1)
                value.append(text[i + 1 : end])
                i = end + 1
            elif ch == '"':
                i += 1
                while text[i] != '"':
                    if text[i] == "\\":
                        i += 1
                    value.append(text[i])
                    i += 1
                i += 1
            else:
                value.append(ch)
                i += 1
        words.append("".join(value))
    return words


@pytest.mark.parametrize("command", [
    r'cat "/var/log/nginx/\.\./\.\./\.\./etc/shadow"',  # the agent sees /var/log/nginx/../../../etc/shadow
    r'ls "/var/log/\.\./\.\./root/.ssh"',
    r'head "-\-bytes=1" /etc/shadow',
])
def test_no_shell_service_refuses_text_the_agent_splits_differently(command: str, policy_name: str) -> None:
    words = [w.value for w in parse_pipeline(command)[0].words]
    assert google_shlex_split(command) != words  # the premise: the two splitters disagree
    decision = decide(command, policy_name, shell_available=False)
    assert not decision.allowed and not decision.needs_approval, decision.reason


@pytest.mark.parametrize("command", [
    "cat /var/log/nginx/access.log", "cat '/var/log/nginx/a b.log'", 'cat "/var/log/nginx/a b.log"',
    r"cat /var/log/nginx/a\ b.log", "head -n 5 /var/log/nginx/access.log",
])
def test_no_shell_service_still_allows_plain_quoting(command: str, policy_name: str) -> None:
    assert google_shlex_split(command) == [w.value for w in parse_pipeline(command)[0].words]
    assert decide(command, policy_name, shell_available=False).allowed


# --- the shell the sentinel wrapper hands the text to sees the words the policy saw -----------------------

TRICKY = [
    "cat '/var/log/nginx/a'\\''b'",
    "cat /var/log/nginx/a\\'b",
    "cat \"/var/log/nginx/'a'\"",
    "cat '/var/log/nginx/)'",
    "cat /var/log/nginx/x\\)",
    "cat '/var/log/nginx/\n'",
    "cat /var/log/nginx/x'\"'\"'",
    "cat '/var/log/nginx/\\'",
    "cat \"/var/log/nginx/\\\\\"",
    "cat \"/var/log/nginx/\\a\"",
    "cat ''#/var/log/nginx/x",
    "cat /var/log/nginx/a#b",
    "cat /var/log/nginx/%s%s%d",
    "cat -- /var/log/nginx/x",
    "cat /var/log/nginx/x | grep 'a|b' | tail -n 1",
    "grep \"a'b\" /var/log/nginx/x",
    "cat /var/log/nginx/é",
]


@pytest.mark.skipif(not shutil.which("sh"), reason="needs a POSIX sh")
@pytest.mark.parametrize("command", TRICKY)
def test_wrapped_command_runs_exactly_the_words_the_policy_saw(command: str, tmp_path: Path) -> None:
    pipeline = accepted_pipeline(command)
    if pipeline is None:
        return  # refused: nothing runs
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "argv.log"
    for name in {sc.words[0].value for sc in pipeline}:
        (bin_dir / name).write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                                    "open(os.environ['ARGV_LOG'], 'a').write(json.dumps(sys.argv) + '\\n')\n")
        (bin_dir / name).chmod(0o755)
    agent_argv = shlex.split(ExitSentinel.random().wrap(command))  # what the agent hands to exec
    assert agent_argv[:2] == ["sh", "-c"]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    subprocess.run([shutil.which("sh") or "sh", *agent_argv[1:]], cwd=cwd, env={"PATH": str(bin_dir), "ARGV_LOG": str(log)},
                   capture_output=True, timeout=10, stdin=subprocess.DEVNULL, check=False)
    ran = sorted(json.loads(line)[1:] for line in log.read_text().splitlines())
    assert ran == sorted([w.display for w in sc.words][1:] for sc in pipeline)


# --- Slack text: entities, markup, the command that is evaluated is the command that runs -------------------

@pytest.mark.parametrize("text", [
    "web cat /var/log/nginx/access.log &amp;&amp; id",
    "web cat /var/log/nginx/access.log &amp;amp;&amp;amp; id",  # double-escaped: literal "&amp;" → refused `&`
    "web cat /var/log/nginx/access.log &gt; /tmp/x",
    "web cat /var/log/nginx/<http://x.io|access.log;id>",
    "web cat /var/log/nginx/access.log\u2028id",
    "web cat /var/log/nginx/access.log\u0085id",
    "web cat /var/log/nginx/access.log\x00id",
    "web cat /var/log/nginx/access.log\rid",
])
def test_slack_text_tricks_never_reach_the_shell_allowed(text: str, policy_name: str) -> None:
    try:
        req = parse_command_text(text)
    except Exception:  # noqa: BLE001 - a usage refusal is fine
        return
    assert isinstance(req, ExecRequest)
    decision = decide(req.command, policy_name)
    assert not decision.allowed and not decision.needs_approval, (req.command, decision.reason)
