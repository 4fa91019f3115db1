"""ExecResult.text says so when output was cut or lost, so no reader mistakes it for the whole output."""

from __future__ import annotations

from bot.output.capture import CapturedOutput
from bot.runner import ExecResult
from bot.ssm.channel import ChannelResult
from bot.targets import Target

TARGET = Target("prod", "prod", "web", "arn:aws:ecs:us-east-1:1:task/prod/abc", "abc", "nginx", "r1", True)


def result(missing: int) -> ExecResult:
    channel = ChannelResult(closed_output="", bytes_received=6, messages_received=3, encrypted=False, resumes=0,
                            missing_messages=missing)
    return ExecResult(TARGET, "cat x", 0, "ok", 0.1, CapturedOutput.from_bytes(b"hello\n"), "s-1",
                      channel=channel)


def test_complete_output_has_no_marker() -> None:
    assert result(0).text == "hello\n"


def test_lost_messages_are_marked_in_the_text() -> None:
    text = result(2).text
    assert text.startswith("hello\n") and "output incomplete: 2 messages were lost" in text
    assert result(2).missing_messages == 2


def test_slack_and_cli_readers_get_the_lost_messages_note() -> None:
    from bot.output.views import result_note, task_result_view

    assert result_note(result(0)) is None
    assert "2 messages were lost" in (result_note(result(2)) or "")
    assert "2 messages were lost" in (task_result_view(result(2), None).note or "")
