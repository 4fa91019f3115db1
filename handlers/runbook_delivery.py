"""Delivery of a runbook run: the "running…" message, then ONE report and ONE file in its thread.

`SlackRunbookRun` is the `bot.runs.executor.RunbookSink` of one runbook run. It shares the running and
failure messages of a plain run (`SlackRun`); only the end differs: the task × step report replaces the
"running…" message and every step's full output on every task goes into the thread as one file.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.output.redact import builtin_redactor
from bot.output.runbook_report import render_runbook_report, report_file, report_view
from handlers import replies
from handlers.delivery import SlackRun
from handlers.slack_calls import Responder, update_message, upload_text_file

if TYPE_CHECKING:
    from bot.output.redact import Redactor
    from bot.runs.fanout import RunEvent
    from bot.runs.order import RunOrder
    from bot.runs.runbook import RunbookResult
    from bot.targets import Target

log = logging.getLogger("ecs_exec_bot.handlers")


class SlackRunbookRun:
    wants_progress = False  # the report shows every step when the run ends; no live tail per step

    def __init__(self, client: AsyncWebClient, redactor: Redactor | None) -> None:
        self._client = client
        self._redactor = redactor or builtin_redactor()
        self._run = SlackRun(client, self._redactor)  # "running…" and failures look like a plain run's
        self._ts: str | None = None

    async def running(self, order: RunOrder, targets: Sequence[Target]) -> str | None:
        self._ts = await self._run.running(order, targets)
        return self._ts

    async def event(self, order: RunOrder, event: RunEvent) -> None:
        return None  # the report shows every step when the run ends

    async def failed(self, order: RunOrder, sentence: str, error: BotError | None) -> None:
        await self._run.failed(order, sentence, error)

    async def finished(self, order: RunOrder, result: RunbookResult, cancel_reason: str | None) -> None:
        # The steps ran (and are audited): a Slack failure from here on is reported, not a failed run.
        assert self._ts is not None and order.runbook is not None
        view = report_view(order, result, self._redactor, runbook=order.runbook.name, cancel_reason=cancel_reason)
        try:
            text, blocks = render_runbook_report(view)
            await update_message(self._client, order.channel_id, self._ts, text, blocks)
            name, title, content = report_file(view, result, self._redactor)
            await upload_text_file(self._client, order.channel_id, self._ts, name, title, content)
        except BotError as exc:
            log.warning("runbook %s ran but its report could not be shown: %s", order.request_id, exc.user_text())
            await Responder(order.origin.reply_url)(*replies.refusal(exc))
