"""A result's note (connection dropped after exit, lost messages) is shown, single and fanned out."""

from __future__ import annotations

import json

from bot.output.render import OutputView, RunView, TaskResultView, render_result

RUN = RunView(service="web", environment="prod", command="uptime", requester="U0ALICE")


def view(task: str, note: str | None) -> TaskResultView:
    return TaskResultView(task_id=task, container="nginx", status="ok", exit_code=0, duration_s=0.2,
                          output=OutputView(head="up 3 days\n"), note=note)


def test_single_result_shows_its_note() -> None:
    _, blocks = render_result(RUN, [view("abc", "The connection dropped after the command exited.")])
    assert "connection dropped after the command exited" in json.dumps(blocks)


def test_fanout_shows_each_note() -> None:
    _, blocks = render_result(RUN, [view("abc", None), view("def", "Output incomplete: 2 messages were lost.")])
    assert "Output incomplete: 2 messages were lost" in json.dumps(blocks)


def test_no_note_no_line() -> None:
    _, blocks = render_result(RUN, [view("abc", None)])
    assert "ℹ️" not in json.dumps(blocks, ensure_ascii=False)


def test_the_notification_text_cannot_ping_a_channel() -> None:
    run = RunView(service="web", environment="prod", command="grep '<!channel>' a.log", requester="U0ALICE")
    text, _ = render_result(run, [view("abc", None)])
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
