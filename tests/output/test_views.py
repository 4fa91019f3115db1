"""The output seam: capture → clean → cut → redact → the message view, the file, the CLI text.

Every rule here is tested on ``bot.output.views``, the path the Slack handlers and the CLI use.
The production-size matrix (each secret shape at each cut, 1 KB to 20 MB) is tests/security/test_secrets_at_cuts.py.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import TargetError
from bot.output.capture import BoundedCapture, CapturedOutput, CaptureLimits
from bot.output.redact import Redactor
from bot.output.render import RunView, render_result
from bot.output.views import (
    files_needed,
    full_output_text,
    output_file,
    output_view,
    run_view,
    task_result_view,
    terminal_text,
)
from bot.runner import ExecResult
from bot.targets import Target

from .redaction_corpus import A36, AKIA, PEM_BODY, POSITIVE
from .slack_limits import assert_valid_message

REDACTOR = Redactor()
SMALL = CaptureLimits(head_bytes=300, tail_bytes=300, file_bytes=2000)
TARGET = Target("prod", "prod", "web-nginx", "arn:aws:ecs:us-east-1:1:task/prod/abc123def456", "abc123def456",
                "nginx", "rt-1", True)
TOKEN = "ghp_" + A36  # a bare token: no key, recognised by its shape only


def result_of(data: bytes, limits: CaptureLimits | None = None, *, status: str = "ok",
              error: TargetError | None = None) -> ExecResult:
    return ExecResult(TARGET, "cat x", 0, status, 0.5, CapturedOutput.from_bytes(data, limits), "s-1",  # type: ignore[arg-type]
                      error=error)


def fragments(text: str, secret: str, size: int = 8) -> list[str]:
    return [secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size] in text]


# -- clean and redact -------------------------------------------------------------------------------------


def test_colour_and_secrets_are_gone_from_the_view() -> None:
    raw = f"\x1b[32mOK\x1b[0m\r\nAWS_ACCESS_KEY_ID={AKIA}\r\n".encode()
    view = output_view(CapturedOutput.from_bytes(raw), REDACTOR)
    assert view.head == "OK\nAWS_ACCESS_KEY_ID=[redacted:aws-access-key-id]\n" and not view.truncated


def test_without_a_configured_redactor_the_builtin_kinds_apply() -> None:
    assert output_view(CapturedOutput.from_bytes(b"password=hunter2\n"), None).head == "password=[redacted:password]\n"


@settings(max_examples=60, deadline=None)
@given(case=st.sampled_from(POSITIVE), cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_a_secret_split_across_chunks_is_still_redacted(case: tuple[str, str, str], cuts: list[int]) -> None:
    _, text, secret = case
    raw = ("noise line\n" * 5 + text + "\n" + "more noise\n" * 5).encode()
    cap = BoundedCapture.from_limits(CaptureLimits())
    prev = 0
    for cut in sorted({c % (len(raw) + 1) for c in cuts}) + [len(raw)]:
        cap.write(raw[prev:cut])
        prev = cut
    view = output_view(cap.result(), REDACTOR)
    assert secret not in view.head + view.tail
    assert secret not in full_output_text(cap.result(), REDACTOR)


# -- cut: whole lines only, counted --------------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(min_value=0, max_value=700), line_breaks=st.booleans())
def test_a_secret_at_the_head_tail_gap_never_shows_a_fragment(offset: int, line_breaks: bool) -> None:
    # The secret sits anywhere around the cut points of a small capture; with or without newlines near it.
    filler = ("x" * 37 + "\n") if line_breaks else ("y" * 38)
    raw = ((filler * 40)[:offset] + f" key={AKIA} " + filler * 60).encode()
    out = CapturedOutput.from_bytes(raw, SMALL)
    view = output_view(out, REDACTOR)
    assert fragments(view.head + "\n" + view.tail, AKIA) == []
    assert fragments(full_output_text(out, REDACTOR), AKIA) == []


@pytest.mark.parametrize("offset", [6, 12, 20, 33])
def test_a_bare_token_split_by_the_head_cut_is_not_shown_in_part(offset: int) -> None:
    limits = CaptureLimits(head_bytes=64 * 1024, tail_bytes=64 * 1024, file_bytes=1024 * 1024)
    # short lines, then one long line (no newline near the cut) with the token across the cut
    data = b"ok\n" * 10 + b"x" * (64 * 1024 - 30 - offset) + f" {TOKEN} ".encode() + b"y" * (300 * 1024) + b"\n"
    view = output_view(CapturedOutput.from_bytes(data, limits), REDACTOR)
    assert fragments(view.head + view.tail, A36, 6) == []
    assert view.head == "ok\n" * 10  # the partial line is hidden whole


@pytest.mark.parametrize("offset", [6, 20, 33])
def test_a_bare_token_split_by_the_tail_cut_is_not_shown_in_part(offset: int) -> None:
    limits = CaptureLimits(head_bytes=16 * 1024, tail_bytes=64 * 1024, file_bytes=1024 * 1024)
    end = b"z" * (64 * 1024 - offset) + b"\nlast line\n"
    data = b"x" * (300 * 1024) + f" {TOKEN} ".encode() + end  # the tail starts inside the token
    out = CapturedOutput.from_bytes(data, limits)
    assert not out.tail_starts_line
    view = output_view(out, REDACTOR)
    assert fragments(view.head + view.tail, A36, 6) == [] and view.tail == "last line\n"


def test_a_bare_token_at_the_file_cut_is_not_in_the_file_in_part() -> None:
    limits = CaptureLimits(head_bytes=1024, tail_bytes=1024, file_bytes=64 * 1024)
    data = b"x" * (63 * 1024 - 30) + f" {TOKEN} ".encode() + b"y" * (300 * 1024) + b"\n"
    assert fragments(full_output_text(CapturedOutput.from_bytes(data, limits), REDACTOR), A36, 6) == []


def test_one_line_longer_than_the_head_shows_its_start_and_drops_the_token_at_the_cut() -> None:
    limits = CaptureLimits(head_bytes=1024, tail_bytes=1024, file_bytes=4096)
    # one line; the head cut (1,024) falls 16 characters into the token
    data = b"GET /a password=hunter2 " * 42 + b"ghp_" + A36.encode() + b" " + b"y" * 10_000 + b"\n"
    view = output_view(CapturedOutput.from_bytes(data, limits), REDACTOR)
    assert view.head.startswith("GET /a password=[redacted:password] GET") and view.head.endswith(" …")
    assert fragments(view.head, A36, 4) == [] and "ghp_" not in view.head
    assert "hunter2" not in view.head and view.tail == ""  # the tail is the end of that line: hidden
    assert view.dropped_lines == 1


@settings(max_examples=150, deadline=None)
@given(lengths=st.lists(st.integers(min_value=0, max_value=900), min_size=1, max_size=60),
       head=st.integers(min_value=1, max_value=600), tail=st.integers(min_value=1, max_value=600))
def test_the_counts_are_honest(lengths: list[int], head: int, tail: int) -> None:
    """Shown bytes + the "not shown" count = all bytes; shown lines + the count = all lines."""
    lines = [f"{i:03d}" + "z" * n + "\n" for i, n in enumerate(lengths)]
    data = "".join(lines).encode()
    view = output_view(CapturedOutput.from_bytes(data, CaptureLimits(head_bytes=head, tail_bytes=tail,
                                                                      file_bytes=head + tail)), REDACTOR)
    shown = view.head + view.tail
    if view.head.endswith("…"):  # the start of one long first line: counted among the hidden lines
        shown_lines = view.tail.count("\n")
        shown_bytes = len(shown.encode()) - len("…".encode())
    else:
        shown_lines = shown.count("\n")
        shown_bytes = len(shown.encode())
        assert all(line + "\n" in lines for line in shown.splitlines())  # whole lines only
    assert shown_bytes + view.dropped_bytes == len(data)
    assert shown_lines + view.dropped_lines == len(lines)


def test_a_clean_cut_keeps_whole_lines() -> None:
    data = b"".join(f"line {i:05d} ok\n".encode() for i in range(2000))
    view = output_view(CapturedOutput.from_bytes(data, CaptureLimits(head_bytes=1024, tail_bytes=1024,
                                                                      file_bytes=64 * 1024)), REDACTOR)
    assert re.fullmatch(r"(line \d{5} ok\n)+", view.head) and re.fullmatch(r"(line \d{5} ok\n)+", view.tail)


def test_a_secret_on_the_lines_next_to_the_gap_is_redacted() -> None:
    data = b"token=ghp_" + b"A1b2" * 9 + b"\n" + b"x\n" * 5000 + b"ghp_" + b"Z9y8" * 9 + b"\n"
    out = CapturedOutput.from_bytes(data, CaptureLimits(head_bytes=64, tail_bytes=64, file_bytes=4096))
    view = output_view(out, REDACTOR)
    assert "A1b2A1b2" not in view.head and "Z9y8Z9y8" not in view.tail
    assert "[redacted:" in view.head and "[redacted:" in view.tail
    assert view.dropped_bytes == out.dropped_bytes


def test_a_private_key_cut_by_the_gap_is_redacted_on_both_sides() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY * 40 + "-----END RSA PRIVATE KEY-----\n"
    raw = ("log\n" * 10 + key + "done\n").encode()
    out = CapturedOutput.from_bytes(raw, CaptureLimits(head_bytes=400, tail_bytes=400, file_bytes=1000))
    assert out.truncated and out.file_truncated
    view = output_view(out, REDACTOR)
    file_text = full_output_text(out, REDACTOR)
    for line in PEM_BODY.splitlines():
        assert line not in view.head and line not in view.tail and line not in file_text
    assert "[redacted:private-key]" in view.head and "[redacted:private-key]" in view.tail
    assert view.tail.endswith("done\n")


# -- the file and the CLI text ---------------------------------------------------------------------------------


def test_the_file_says_what_was_left_out() -> None:
    raw = b"".join(f"line {i}\n".encode() for i in range(10_000))
    out = CapturedOutput.from_bytes(raw, CaptureLimits(head_bytes=100, tail_bytes=1000, file_bytes=5000))
    text = full_output_text(out, REDACTOR)
    assert text.startswith("line 0\n") and text.endswith("line 9999\n")
    assert "left out of this file" in text and out.sha256 in text and f"{len(raw):,} bytes" in text
    assert full_output_text(CapturedOutput.from_bytes(b"short\n"), REDACTOR) == "short\n"


def test_short_output_needs_no_file_and_long_output_does() -> None:
    short = result_of(b"hello\n")
    long = result_of(b"".join(b"line %d\n" % i for i in range(2000)))
    assert files_needed([short], None) == [False]
    assert files_needed([long], None) == [True]
    assert files_needed([short, long], None) == [False, True]  # per task of a fan-out
    name, title, content = output_file(long, None, service="web", request_id="r1")
    assert name == "web-abc123def456-r1.txt" and "redacted" in title
    assert content.decode().splitlines()[-1] == "line 1999"


def test_the_cli_text_is_not_redacted_but_is_cut_like_the_message() -> None:
    data = b"password=hunter2\n" + b"x" * 5000 + b"\n" + b"last\n"
    result = result_of(data, CaptureLimits(head_bytes=100, tail_bytes=100, file_bytes=1000))
    text = result.text
    assert text.startswith("password=hunter2\n··· 1 line (4.9 KB) not shown ···\n") and text.endswith("not shown ···\nlast\n")
    assert terminal_text(CapturedOutput.from_bytes(b"\x1b[1mok\x1b[0m\r\n")) == "ok\n"


# -- runner results ----------------------------------------------------------------------------------------------


def test_runner_results_become_views_and_render() -> None:
    ok = result_of(b"password=hunter2\n")
    failed = result_of(b"", status="error", error=TargetError(f"Task stopped with {AKIA}.", fix="Retry."))
    views = [task_result_view(r, REDACTOR) for r in (ok, failed)]
    assert views[0].output.head == "password=[redacted:password]\n"
    assert views[1].error == "Task stopped with [redacted:aws-access-key-id]. Retry."
    text, blocks = render_result(RunView("web", "prod", "env", "U1"), views)
    assert_valid_message(text, blocks)
    assert "hunter2" not in str(blocks) and AKIA not in str(blocks)


def test_the_command_and_reason_shown_are_redacted() -> None:
    view = run_view(service="web", environment="prod", requester="U1", redactor=REDACTOR,
                    command="curl -H 'Authorization: Bearer abc.def-123456' http://localhost/",
                    reason=f"rotating {AKIA}")
    assert "abc.def-123456" not in view.command and "[redacted:bearer-token]" in view.command
    assert view.reason == "rotating [redacted:aws-access-key-id]"
