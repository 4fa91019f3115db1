"""The transcript renderer: Slack mrkdwn and blocks as a terminal shows them (pure functions)."""

from __future__ import annotations

import io
import re

import pytest

from standins.demo.channel import Message, SharedFile, UserAction
from standins.demo.transcript import (
    Names,
    Style,
    block_lines,
    event_lines,
    heading_lines,
    human_size,
    inline_text,
    mrkdwn_lines,
    style_for,
)

NAMES = Names(users={"U0ALICE": "alice", "U0BOB": "bob", "U0BOT": "ecs-exec"}, channels={"C0INC": "incident"})
PLAIN = Style(color=False, unicode=True)
COLOR = Style(color=True, unicode=True)
ASCII = Style(color=False, unicode=False)
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def test_mentions_dates_links_and_entities_are_translated() -> None:
    text = (
        "<@U0ALICE> asked <@U0BOB|bobby> in <#C0INC> · expires <!date^1764188700^{time}|21:25 UTC> · "
        "see <https://example.com/runbook|the runbook> · <!here> · a &lt;b&gt; &amp; c"
    )
    assert inline_text(text, NAMES, PLAIN) == (
        "@alice asked @bob in #incident · expires 21:25 UTC · see the runbook · @here · a <b> & c"
    )


def test_unknown_user_is_shown_by_id() -> None:
    assert inline_text("by <@U0CAROL>", NAMES, PLAIN) == "by @U0CAROL"


def test_emoji_shortcodes_become_unicode_or_ascii() -> None:
    assert inline_text(":white_check_mark: ok :no_entry: :some_custom:", NAMES, PLAIN) == "✅ ok ⛔ :some_custom:"
    assert inline_text(":white_check_mark: ok · done…", NAMES, ASCII) == "[ok] ok - done..."


def test_bold_is_ansi_bold_with_colour_and_unmarked_without() -> None:
    assert inline_text("on *web* (prod)", NAMES, PLAIN) == "on web (prod)"
    assert inline_text("on *web* (prod)", NAMES, COLOR) == "on \x1b[1mweb\x1b[22m (prod)"
    # Not emphasis: a glob, a lone asterisk, snake_case.
    assert inline_text("cat /var/log/* and 2 * 3", NAMES, PLAIN) == "cat /var/log/* and 2 * 3"
    assert inline_text("_(no output)_ in my_var_name", NAMES, PLAIN) == "(no output) in my_var_name"
    assert inline_text("_(no output)_", NAMES, COLOR) == "\x1b[3m(no output)\x1b[23m"


def test_inline_code_is_literal_and_bold_may_span_it() -> None:
    text = "*`tail -n [0-9]* /var/log/*/*` is refused :x:*, see `:x: *a*`"
    assert inline_text(text, NAMES, PLAIN) == "`tail -n [0-9]* /var/log/*/*` is refused ❌, see `:x: *a*`"
    assert inline_text(text, NAMES, COLOR) == (
        "\x1b[1m\x1b[36m`tail -n [0-9]* /var/log/*/*`\x1b[39m is refused ❌\x1b[22m, see \x1b[36m`:x: *a*`\x1b[39m"
    )


def test_code_block_gets_a_gutter_and_keeps_its_content_unformatted() -> None:
    lines = mrkdwn_lines("*result*\n```a *b* &lt;c&gt;\n:x: <@U0BOB>```\nafter", NAMES, PLAIN)
    assert lines == ["result", "┆ a *b* <c>", "┆ :x: <@U0BOB>", "after"]


def test_long_code_block_is_folded_unless_disabled() -> None:
    body = "\n".join(f"line {i}" for i in range(1, 41))
    folded = mrkdwn_lines(f"```{body}```", NAMES, Style(fold_code_lines=14))
    assert folded[:2] == ["┆ line 1", "┆ line 2"]
    assert folded[-1] == "┆ line 40"
    assert "┆ ⋯ 28 more lines (--full prints them)" in folded
    assert len(folded) == 13
    full = mrkdwn_lines(f"```{body}```", NAMES, Style(fold_code_lines=0))
    assert len(full) == 40


def test_unclosed_fence_is_plain_text() -> None:
    assert mrkdwn_lines("a ``` b", NAMES, PLAIN) == ["a ``` b"]


def test_blocks_section_fields_context_actions_divider_header() -> None:
    blocks = [
        {"type": "header", "text": {"type": "plain_text", "text": "Approval needed"}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "hello <@U0ALICE>"},
         "fields": [{"type": "mrkdwn", "text": "*env* prod"}]},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "request 123"},
                                         {"type": "image", "image_url": "x", "alt_text": "y"},
                                         {"type": "plain_text", "text": "ttl 15 min"}]},
        {"type": "divider"},
        {"type": "actions", "elements": [
            {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary"},
            {"type": "button", "text": {"type": "plain_text", "text": "Deny"}, "style": "danger"}]},
    ]
    lines = [line for block in blocks for line in block_lines(block, NAMES, PLAIN)]
    assert lines == [
        "Approval needed",
        "hello @alice",
        "env prod",
        "request 123 ttl 15 min",
        "─" * 40,
        "[ Approve ]  [ Deny ]",
    ]


def test_buttons_are_coloured_by_style_on_a_tty() -> None:
    (line,) = block_lines({"type": "actions", "elements": [
        {"type": "button", "text": {"type": "plain_text", "text": "Approve"}, "style": "primary"}]}, NAMES, COLOR)
    assert line == "\x1b[1;32m[ Approve ]\x1b[22;39m"


def test_message_headers_say_who_posted_and_who_sees_it() -> None:
    ephemeral = Message("U0BOT", ":no_entry: refused", visibility="ephemeral", to_user="U0ALICE")
    assert event_lines(ephemeral, NAMES, PLAIN) == ["  ecs-exec APP  only visible to @alice", "    ⛔ refused"]
    posted = Message("U0BOT", "fallback", ({"type": "section", "text": {"type": "mrkdwn", "text": "shown"}},),
                     channel_id="C0INC", ts="1.1")
    assert event_lines(posted, NAMES, PLAIN) == ["  ecs-exec APP  #incident", "    shown"]
    edited = Message("U0BOT", "now", channel_id="C0INC", ts="1.1", edited=True)
    assert event_lines(edited, NAMES, PLAIN)[0] == "  ecs-exec APP  #incident · (edited)"
    threaded = Message("U0BOT", "reply", channel_id="C0INC", ts="1.2", thread_ts="1.1")
    assert event_lines(threaded, NAMES, PLAIN)[0] == "  ecs-exec APP  in the thread · #incident"


def test_blocks_win_over_text_and_text_is_the_fallback() -> None:
    assert event_lines(Message("U0BOT", "only text"), NAMES, PLAIN)[1:] == ["    only text"]


def test_user_action_line() -> None:
    assert event_lines(UserAction("U0BOB", "/ecs-exec web ls"), NAMES, PLAIN) == ["@bob › /ecs-exec web ls"]
    assert event_lines(UserAction("U0BOB", "/ecs-exec web ls"), NAMES, ASCII) == ["@bob > /ecs-exec web ls"]


def test_shared_file_shows_name_size_and_first_lines() -> None:
    file = SharedFile("U0BOT", "worker-1.txt", "Full output (redacted)", 322_563, ("a", "b"), 4000,
                      channel_id="C0INC", thread_ts="1.1")
    assert event_lines(file, NAMES, PLAIN) == [
        "  ecs-exec APP  in the thread · #incident",
        '    📎 worker-1.txt · 315.0 KB · 4,000 lines "Full output (redacted)"',
        "    ┆ a",
        "    ┆ b",
        "    ┆ … 3,998 more lines in the file",
    ]


def test_ascii_style_never_emits_non_ascii() -> None:
    file = SharedFile("U0BOT", "f.txt", "t", 10, ("naïve ✓",), 1, channel_id="C0INC")
    message = Message("U0BOT", ":hourglass_flowing_sand: Running `x` on *web*… · ok ✅", channel_id="C0INC")
    lines = [*event_lines(file, NAMES, ASCII), *event_lines(message, NAMES, ASCII),
             *heading_lines(1, "Title — x", "note", ASCII)]
    for line in lines:
        line.encode("ascii")


@pytest.mark.parametrize(
    ("size", "text"), [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KB"), (322_563, "315.0 KB"), (5 << 20, "5.0 MB")]
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


class _Stream(io.StringIO):
    def __init__(self, tty: bool, encoding: str = "utf-8") -> None:
        super().__init__()
        self._tty = tty
        self._encoding = encoding

    def isatty(self) -> bool:
        return self._tty

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return self._encoding


@pytest.mark.parametrize(
    ("tty", "env", "color"),
    [
        (True, {}, True),
        (False, {}, False),  # a pipe or a file
        (True, {"NO_COLOR": "1"}, False),  # no-color.org
        (True, {"NO_COLOR": ""}, True),  # an empty NO_COLOR does not count
        (True, {"TERM": "dumb"}, False),
    ],
)
def test_colour_only_on_a_tty_without_no_color(tty: bool, env: dict[str, str], color: bool) -> None:
    assert style_for(_Stream(tty), env).color is color


def test_unicode_only_when_the_stream_can_encode_it() -> None:
    assert style_for(_Stream(False, "utf-8"), {}).unicode is True
    assert style_for(_Stream(False, "ascii"), {}).unicode is False


def test_heading_and_colour_codes() -> None:
    plain = heading_lines(3, "A refusal", "only you see it", PLAIN)
    assert plain[0] == ""
    assert plain[1].startswith("── 3. A refusal ──")
    assert plain[2] == "only you see it"
    coloured = heading_lines(3, "A refusal", None, COLOR)
    assert ANSI.search(coloured[1])
    assert ANSI.sub("", coloured[1]) == plain[1]
