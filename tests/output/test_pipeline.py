"""capture → clean → redact → view: secrets never leak across chunks or across the head/tail gap."""

from __future__ import annotations

from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import TargetError
from bot.output import (
    BoundedCapture,
    CapturedOutput,
    CaptureLimits,
    Redactor,
    RunView,
    full_output_text,
    prepare_output,
    render_result,
    task_result_view,
)

from .redaction_corpus import AKIA, PEM_BODY, POSITIVE
from .slack_limits import assert_valid_message

REDACTOR = Redactor()
SMALL = CaptureLimits(head_bytes=300, tail_bytes=300, file_bytes=2000)


def test_colour_and_secrets_are_gone_from_the_view() -> None:
    raw = f"\x1b[32mOK\x1b[0m\r\nAWS_ACCESS_KEY_ID={AKIA}\r\n".encode()
    view = prepare_output(CapturedOutput.from_bytes(raw), REDACTOR)
    assert view.head == "OK\nAWS_ACCESS_KEY_ID=[redacted:aws-access-key-id]\n" and not view.truncated


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
    view = prepare_output(cap.result(), REDACTOR)
    assert secret not in view.head + view.tail
    assert secret not in full_output_text(cap.result(), REDACTOR)


@settings(max_examples=200, deadline=None)
@given(offset=st.integers(min_value=0, max_value=700), line_breaks=st.booleans())
def test_a_secret_at_the_head_tail_gap_never_shows_a_fragment(offset: int, line_breaks: bool) -> None:
    # The secret sits anywhere around the cut points of a small capture; with or without newlines near it.
    filler = ("x" * 37 + "\n") if line_breaks else ("y" * 38)
    before = (filler * 40)[:offset]
    raw = (before + f" key={AKIA} " + filler * 60).encode()
    out = CapturedOutput.from_bytes(raw, SMALL)
    view = prepare_output(out, REDACTOR)
    shown = view.head + "\n" + view.tail
    for i in range(0, len(AKIA) - 7):
        assert AKIA[i : i + 8] not in shown  # no 8-character fragment of the key id
    file_text = full_output_text(out, REDACTOR)
    for i in range(0, len(AKIA) - 7):
        assert AKIA[i : i + 8] not in file_text


def test_a_private_key_cut_by_the_gap_is_redacted_on_both_sides() -> None:
    key = "-----BEGIN RSA PRIVATE KEY-----\n" + PEM_BODY * 40 + "-----END RSA PRIVATE KEY-----\n"
    raw = ("log\n" * 10 + key + "done\n").encode()
    out = CapturedOutput.from_bytes(raw, CaptureLimits(head_bytes=400, tail_bytes=400, file_bytes=1000))
    assert out.truncated
    view = prepare_output(out, REDACTOR)
    for line in PEM_BODY.splitlines():
        assert line not in view.head and line not in view.tail
    assert "[redacted:private-key]" in view.head and "[redacted:private-key]" in view.tail
    assert view.tail.endswith("done\n")


def test_full_output_file_says_what_was_left_out() -> None:
    raw = b"".join(f"line {i}\n".encode() for i in range(10_000))
    out = CapturedOutput.from_bytes(raw, CaptureLimits(head_bytes=100, tail_bytes=1000, file_bytes=5000))
    text = full_output_text(out, REDACTOR)
    assert text.startswith("line 0\n") and text.endswith("line 9999\n")
    assert "left out of this file" in text and out.sha256 in text and f"{len(raw):,} bytes" in text
    assert full_output_text(CapturedOutput.from_bytes(b"short\n"), REDACTOR) == "short\n"


def test_runner_results_become_views_and_render() -> None:
    target = SimpleNamespace(task_id="3f2a9c0d1e2f4a5b6c7d8e9f00e1", container="app")
    ok = SimpleNamespace(target=target, status="ok", exit_code=0, duration_s=0.2,
                         output=CapturedOutput.from_bytes(b"password=hunter2\n"), error=None)
    failed = SimpleNamespace(target=target, status="error", exit_code=None, duration_s=3.0,
                             output=CapturedOutput.from_bytes(b""),
                             error=TargetError(f"Task stopped with {AKIA}.", fix="Retry."))
    views = [task_result_view(r, REDACTOR) for r in (ok, failed)]
    assert views[0].output.head == "password=[redacted:password]\n"
    assert views[1].error == "Task stopped with [redacted:aws-access-key-id]. Retry."
    text, blocks = render_result(RunView("web", "prod", "env", "U1"), views)
    assert_valid_message(text, blocks)
    assert "hunter2" not in str(blocks) and AKIA not in str(blocks)


def test_the_command_and_reason_shown_are_redacted() -> None:
    from bot.output import run_view

    view = run_view(service="web", environment="prod", requester="U1", redactor=REDACTOR,
                    command="curl -H 'Authorization: Bearer abc.def-123456' http://localhost/",
                    reason=f"rotating {AKIA}")
    assert "abc.def-123456" not in view.command and "[redacted:bearer-token]" in view.command
    assert view.reason == "rotating [redacted:aws-access-key-id]"
