"""Properties: the parser and the policy only ever raise their typed errors (or return a Decision), an
allowed command never holds an unquoted shell operator, and user globs stay inside pattern globs."""

from __future__ import annotations

import shlex

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.command_patterns import ArgvPattern
from bot.commands import ExecRequest, parse_command_text, unescape_slack, unwrap_slack_markup
from bot.errors import UsageError
from bot.policy import Decision, evaluate, parse_policy
from bot.shell_syntax import WILD_QMARK, WILD_STAR, ShellSyntaxRefused, SimpleCommand, Word, parse_pipeline
from tests.policy.rulesets import ONCALL_REQUEST, permissive
from tests.support.commands import accepted_pipeline

POLICY = permissive()
SHELL_POLICY = parse_policy({"rules": [{
    "name": "break-glass", "users": ["U0ALICE"], "services": ["*"], "allow_shell_syntax": True,
    "commands": [{"regex": "(?s)cat .*"}],
}]})

FAST = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Pieces that exercise every branch of the parser and the tokenizer.
SLASH_TOKENS = [
    "web", "api", "--task", "--all-tasks", "--timeout", "5m", "30", "--reason", "--container", "--", "-x",
    "help", "list", "doctor", "'", '"', "\u201c", "\u201d", "\\", "&amp;", "&lt;", "&gt;", "<@U1>",
    "<http://x.example|x.example>", "<#C1>", "<!here>", "=", " ", "  ", "\t", "\n", "cat", "/var/log/nginx/a",
]
SHELL_TOKENS = [
    "cat", "/var/log/nginx/access.log", "/var/log/nginx/", "/etc/shadow", "..", "echo", "ls", "head", "sh",
    "find", "-exec", "awk", "'", '"', "\\", " ", " ", " ", "\t", "\n", "|", "||", "|&", ";", "&", "&&", ">",
    "<", ">>", "2>&1", "$", "$(", "${", ")", "(", "`", "{", "}", "~", "#", "!", "*", "?", "[", "=", "IFS",
    "a", "-n", "10", "uptime", "\uff1b", "\u00a0", "\x00", "\u200b", "'{print $1}'",
]

slash_text = st.one_of(
    st.text(max_size=200),
    st.lists(st.sampled_from(SLASH_TOKENS), max_size=25).map("".join),
    st.lists(st.sampled_from(SLASH_TOKENS + SHELL_TOKENS), max_size=40).map(" ".join),
)
shell_text = st.one_of(
    st.text(max_size=200),
    st.text(alphabet=st.sampled_from("ab/.*?'\"\\ |;&<>$(){}`~#!=\n\t-"), max_size=60),
    st.lists(st.sampled_from(SHELL_TOKENS), max_size=30).map("".join),
    st.lists(st.sampled_from(SHELL_TOKENS), max_size=30).map(" ".join),
)


@FAST
@given(slash_text)
def test_parser_returns_a_request_or_raises_usage_error(text: str) -> None:
    try:
        request = parse_command_text(text)
    except UsageError as exc:
        assert exc.message and exc.fix  # one sentence and the usage
        return
    if isinstance(request, ExecRequest):
        # The command is the typed text, untouched: a slice of the unescaped input.
        assert request.command and request.command == request.command.strip(" \t\n")
        assert request.command in unescape_slack(unwrap_slack_markup(text))


@FAST
@given(shell_text)
def test_policy_returns_a_decision_for_any_command(command: str) -> None:
    for policy in (POLICY, SHELL_POLICY):
        decision = evaluate(policy, command=command, **ONCALL_REQUEST)
        assert isinstance(decision, Decision)
        assert not (decision.allowed and decision.needs_approval)
        if not decision.allowed:
            assert decision.reason and decision.refusal is not None


@FAST
@given(shell_text)
def test_tokenizer_only_raises_refusals(command: str) -> None:
    try:
        parse_pipeline(command)
    except ShellSyntaxRefused as exc:
        assert exc.refusal.category and exc.refusal.why


def unquoted_shell_syntax(command: str) -> list[str]:
    """An independent, deliberately simple scan for shell syntax outside quotes (the test oracle)."""
    found: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(command):
        ch = command[i]
        if ch in "\n\r":
            found.append("newline")
        if quote == "'":
            quote = None if ch == "'" else quote
        elif quote == '"':
            if ch == "\\":
                i += 1
            elif ch == '"':
                quote = None
            elif ch in "$`":
                found.append(ch)
        elif ch == "\\":
            i += 1
            if i >= len(command):
                found.append("trailing backslash")
        elif ch in "'\"":
            quote = ch
        elif ch == "|" and command[i + 1 : i + 2] in ("|", "&"):
            found.append(command[i : i + 2])
        elif ch in ";&<>()$`{}~!":
            found.append(ch)
        elif ch == "#" and (i == 0 or command[i - 1] in " \t|"):
            found.append("#")
        i += 1
    if quote:
        found.append("unterminated quote")
    return found


@FAST
@given(shell_text)
def test_an_allowed_command_has_no_unquoted_shell_syntax(command: str) -> None:
    decision = evaluate(POLICY, command=command, **ONCALL_REQUEST)
    if decision.allowed:
        assert unquoted_shell_syntax(command) == [], command


ALLOWED_PARTS = ["cat /var/log/nginx/access.log", "uptime", "ps aux", "echo hi", "ls -la", "sort"]
OPERATORS = [";", "&&", "||", "&", "\n", ">", ">>", "<", "2>&1 |", "|&", "<<<", "$(", "`", "<(", ">(",
             ">|", "&>", "(", ")", "{", "}", " # ", "\r\n", ";;", "\uff1b", "\u037e"]


@FAST
@given(st.sampled_from(ALLOWED_PARTS), st.sampled_from(OPERATORS), st.sampled_from(ALLOWED_PARTS),
       st.sampled_from(["", " ", "  ", "\t"]), st.sampled_from(["", " ", "\t"]))
def test_joining_allowed_commands_with_an_operator_is_refused(a: str, op: str, b: str, sp1: str, sp2: str) -> None:
    assert evaluate(POLICY, command=a, **ONCALL_REQUEST).allowed
    decision = evaluate(POLICY, command=f"{a}{sp1}{op}{sp2}{b}", **ONCALL_REQUEST)
    assert not decision.allowed and not decision.needs_approval
    assert decision.refusal is not None and decision.refusal.category != "no-match"


@FAST
@given(st.sampled_from(ALLOWED_PARTS), st.sampled_from(ALLOWED_PARTS))
def test_a_pipe_between_allowed_commands_is_allowed(a: str, b: str) -> None:
    assert evaluate(POLICY, command=f"{a} | {b}", **ONCALL_REQUEST).allowed


GLOB_ALPHABET = "ab/*?"


@st.composite
def pattern_and_typed(draw: st.DrawFn) -> tuple[str, str]:
    """A typed word with globs, and a pattern glob derived from it (so most pairs match)."""
    typed = draw(st.text(alphabet=GLOB_ALPHABET, min_size=1, max_size=8))
    pattern = "".join(
        ch if ch == "/" else draw(st.sampled_from([ch, "*", "*", "?", "**", "a"])) for ch in typed
    )
    return pattern, typed


@settings(max_examples=600, deadline=None)
@given(pattern_and_typed(), st.data())
def test_a_user_glob_only_matches_when_every_expansion_does(pair: tuple[str, str], data: st.DataObject) -> None:
    """If the pattern accepts the typed word with its globs, it accepts any file name the shell could
    put in their place (shell globs never produce `/`)."""
    pattern, typed = pair
    (command,) = parse_pipeline(f"cat ./{typed}")
    argv = ArgvPattern(["cat", f"./{pattern}"])
    if not argv.match(command).matched:
        return
    word = command.words[1].value
    expanded = []
    for ch in word:
        if ch == WILD_STAR:
            expanded.append(data.draw(st.text(alphabet="ab", max_size=3)))
        elif ch == WILD_QMARK:
            expanded.append(data.draw(st.sampled_from("ab")))
        else:
            expanded.append(ch)
    literal = "".join(expanded)
    assert argv.match(SimpleCommand((Word("cat", "cat"), Word(literal, literal)), "")).matched


WORDY_TEXT = st.text(alphabet=st.sampled_from("ab/.-*?'\" \t\\|=,:%^+@"), max_size=40)


@FAST
@given(WORDY_TEXT)
def test_tokenizer_words_agree_with_posix_shlex(command: str) -> None:
    """Where both accept a command, our words are the words a POSIX shell (shlex) sees, pipe by pipe.
    (Backslashes inside double quotes are left out: shlex keeps `\\$`, a shell drops the backslash.)"""
    pipeline = accepted_pipeline(command)
    if pipeline is None:
        return
    for simple in pipeline:
        if '"' in simple.source and "\\" in simple.source:
            continue
        assert [w.display for w in simple.words] == shlex.split(simple.source)
