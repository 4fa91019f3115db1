"""`/ecs-exec` text parsing: Slack escaping and markup, options, exact command text, usage errors."""

from __future__ import annotations

import pytest

from bot.commands import (
    DoctorRequest,
    ExecRequest,
    HelpRequest,
    ListRequest,
    parse_command_text,
    unescape_slack,
    unwrap_slack_markup,
)
from bot.errors import UsageError


def exec_(service: str, command: str, **kw: object) -> ExecRequest:
    return ExecRequest(service=service, command=command, **kw)  # type: ignore[arg-type]


PARSED = [
    # plain
    ("web uptime", exec_("web", "uptime")),
    ("  web   uptime  ", exec_("web", "uptime")),
    # the command keeps its quoting and inner spacing exactly
    ('web grep  -E  "a  b|c"   /var/log/x', exec_("web", 'grep  -E  "a  b|c"   /var/log/x')),
    ("web echo 'it''s'  \\  x", exec_("web", "echo 'it''s'  \\  x")),
    ("web\tls\t-la", exec_("web", "ls\t-la")),
    # Slack's HTML escaping is undone exactly once
    ("web cat a &gt; b &lt; c &amp;&amp; d", exec_("web", "cat a > b < c && d")),
    ("web echo &amp;lt;", exec_("web", "echo &lt;")),
    ("web echo &quot;x&quot;", exec_("web", "echo &quot;x&quot;")),  # Slack never sends &quot;
    # links become what the user typed (the label), or the target when there is no label
    ("web curl <http://example.com|example.com>", exec_("web", "curl example.com")),
    ("web curl <https://a.example/x?b=1&amp;c=2>", exec_("web", "curl https://a.example/x?b=1&c=2")),
    ("web mail <mailto:ops@example.com|ops@example.com>", exec_("web", "mail ops@example.com")),
    # options before the service
    ("--task 0123abcd web uptime", exec_("web", "uptime", task="0123abcd")),
    ("--container nginx --timeout 30 web ls", exec_("web", "ls", container="nginx", timeout=30)),
    # options after the service, before the command
    ("web --all-tasks --reason 'INC-1 spike' uptime", exec_("web", "uptime", all_tasks=True, reason="INC-1 spike")),
    ('web --reason "disk full" df -h', exec_("web", "df -h", reason="disk full")),
    ("web --reason \u201cdisk full\u201d df -h", exec_("web", "df -h", reason="disk full")),  # smart quotes
    ("web --reason=INC-2 --timeout=5m uptime", exec_("web", "uptime", reason="INC-2", timeout=300)),
    ("web --timeout 90s uptime", exec_("web", "uptime", timeout=90)),
    (
        "--task arn:aws:ecs:us-east-1:111122223333:task/prod/0123 web uptime",
        exec_("web", "uptime", task="arn:aws:ecs:us-east-1:111122223333:task/prod/0123"),
    ),
    # options after the command starts belong to the command
    ("web ls --task x", exec_("web", "ls --task x")),
    # `--` ends the options, so the command may start with `-`
    ("web -- -v", exec_("web", "-v")),
    ("web --timeout 5 -- --help", exec_("web", "--help", timeout=5)),
    ("-- web --task", exec_("web", "--task")),
    # newlines are kept (the policy refuses them unless a rule allows shell syntax)
    ("web echo a\necho b", exec_("web", "echo a\necho b")),
    ("web\nuptime", exec_("web", "uptime")),
    # an unclosed quote in the command is the policy's business, not the parser's
    ("web echo 'unclosed", exec_("web", "echo 'unclosed")),
    # subcommands
    ("", HelpRequest()),
    ("   ", HelpRequest()),
    ("help", HelpRequest()),
    ("HELP", HelpRequest()),
    ("help policy", HelpRequest(topic="policy")),
    ("--help", HelpRequest()),
    ("list", ListRequest()),
    ("doctor web", DoctorRequest(service="web")),
    ("doctor  prod/web ", DoctorRequest(service="prod/web")),
]


@pytest.mark.parametrize(("text", "expected"), PARSED, ids=[repr(t)[:50] for t, _ in PARSED])
def test_parse(text: str, expected: object) -> None:
    assert parse_command_text(text) == expected


ERRORS = [
    ("web", "Say which command"),
    ("web   ", "Say which command"),
    ("web --", "Say which command"),
    ("--task 1", "Name the service"),
    ("web -la", "put `--` before it"),
    ("web --tsk 1 uptime", "Did you mean `--task`"),
    ("--bogus web uptime", "Unknown option `--bogus`"),
    ("web --task", "needs a value"),
    ("web --task 1 --task 2 uptime", "given twice"),
    ("web --task 1 --all-tasks uptime", "not both"),
    ("web --all-tasks=yes uptime", "takes no value"),
    ("web --timeout soon uptime", "not a number of seconds"),
    ("web --timeout 0 uptime", "between 1 and"),
    ("web --timeout 99m uptime", "between 1 and"),
    ("web --reason '' uptime", "`--reason` is empty"),
    ("web --reason " + "x" * 301 + " uptime", "longer than 300"),
    ("web --reason 'unclosed uptime", "never closed"),
    ("web --task 'a b' uptime", "not a task ID"),
    ("web --container 'x;y' uptime", "not a container name"),
    ("we;b uptime", "not a valid service name"),
    ("--task 1 list uptime", "is a subcommand"),
    ("list all", "takes no arguments"),
    ("doctor", "needs a service"),
    ("doctor web api", "exactly one service"),
    ("web echo <@U0ALICE>", "user mention"),
    ("web echo <@U0ALICE|alice>", "user mention"),
    ("web echo <#C0OPS|ops>", "channel link"),
    ("web echo <!here>", "@here mention"),
    ("web echo <!subteam^S0SRE|@sre>", "group or @here mention"),
    ("web uptime\x00", "U+0000"),
    ("web echo \x1b[31m", "U+001B"),
    ("web echo a\rb", "U+000D"),
    ("web echo a\u200bb", "U+200B"),
    ("web echo \u202egnp.exe", "U+202E"),
    ("web echo a\u2028b", "U+2028"),
    ("web " + "x" * 4000, "the limit is 4,000"),
]


@pytest.mark.parametrize(("text", "needle"), ERRORS, ids=[repr(t)[:50] for t, _ in ERRORS])
def test_usage_errors_explain_and_show_usage(text: str, needle: str) -> None:
    with pytest.raises(UsageError) as info:
        parse_command_text(text)
    err = info.value
    assert needle in err.message
    # Every parse error answers with the usage and an example.
    assert err.fix is not None and "Usage: `/ecs-exec" in err.fix and "Example: `/ecs-exec web" in err.fix
    assert err.exit_status == 64


def test_text_of_exactly_4000_characters_is_accepted() -> None:
    text = "web echo " + "x" * (4000 - len("web echo "))
    assert len(text) == 4000
    assert parse_command_text(text).command.endswith("x")  # type: ignore[union-attr]


def test_unescape_is_one_pass() -> None:
    assert unescape_slack("&amp;amp; &amp;gt; &lt;&gt;") == "&amp; &gt; <>"


def test_markup_is_unwrapped_before_unescaping() -> None:
    # A typed `<` arrives as `&lt;`, so `&lt;http://x&gt;` is text, not a link.
    assert unescape_slack(unwrap_slack_markup("a &lt;http://x|y&gt; <http://x|y>")) == "a <http://x|y> y"


def test_non_slack_angle_brackets_are_left_alone() -> None:
    assert unwrap_slack_markup("cat <notalink>") == "cat <notalink>"
    assert unwrap_slack_markup("cat <a:b|c>") == "cat <a:b|c>"  # only schemes Slack links are unwrapped
