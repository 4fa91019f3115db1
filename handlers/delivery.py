"""Delivery: what a run (and an approval request) looks like in Slack, driven by the core's events.

`SlackRun` is the `bot.runs.executor.RunSink` of one run: it posts (or updates) the "running…" message,
replaces it with the result, uploads the full output into the message's thread when the message had to
cut it, and tells the requester alone when a run could not start. Approval cards and the messages of
records the maintenance sweep changed are posted and updated here too. Messages come from `replies`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.errors import BotError
from bot.runs import RunRecord, RunState
from bot.runs.approvals import ApprovalError, ApprovalRuleLike
from bot.runs.fanout import TargetProgress
from handlers import replies
from handlers.live import LiveMessage, LiveUpdates
from handlers.slack_calls import Replier, post_message, requester_replier, update_message, upload_text_file

if TYPE_CHECKING:
    from bot.output.redact import Redactor
    from bot.runner import ExecResult
    from bot.runs.fanout import RunEvent
    from bot.runs.ledger import RunLedger
    from bot.runs.order import RunOrder
    from bot.services import Services
    from bot.targets import Target

log = logging.getLogger("ecs_exec_bot.handlers")
# A silent command's live message refreshes its elapsed time this often (output refreshes it sooner).
IDLE_REFRESH_S = 10.0
# How long to wait for the maintenance loop when the bot stops.
MAINTENANCE_STOP_S = 10.0


class SlackRun:
    """One run's messages. The channel message is posted by `running` (or is the approval card the run
    was approved on) and updated from then on; with ``live``, it shows progress while the run lasts.
    A run requested in a thread (``order.origin.thread_ts``) posts there, and its files go there too."""

    def __init__(
        self, client: AsyncWebClient, redactor: Redactor, live: LiveUpdates | None = None, *,
        filterable: bool = False,
    ) -> None:
        self._client = client
        self._redactor = redactor
        self._filterable = filterable  # outputs are kept for follow-ups: results offer the Filter button
        self._ts: str | None = None
        self._live = live if live is not None and live.settings.enabled else None
        self.wants_progress = self._live is not None
        self._live_message: LiveMessage | None = None
        self._progress: dict[str, TargetProgress] = {}
        self._targets: list[Target] = []
        self._started = 0.0
        self._shown_at = 0.0  # the elapsed time of the progress last marked for showing

    async def running(self, order: RunOrder, targets: Sequence[Target]) -> str | None:
        text, blocks = replies.running_message(order, list(targets), self._redactor)
        self._ts = order.origin.message_ts
        if self._ts is None:
            self._ts = await post_message(self._client, order.channel_id, text, blocks, thread_ts=order.origin.thread_ts)
        else:
            await update_message(self._client, order.channel_id, self._ts, text, blocks)
        if self._live is not None:
            self._targets, self._started = list(targets), self._live.clock()
            self._live_message = LiveMessage(
                self._client, order.channel_id, self._ts, lambda: self._live_view(order), self._live
            )
        return self._ts

    def _live_view(self, order: RunOrder) -> replies.Message:
        assert self._live is not None
        elapsed = self._live.clock() - self._started
        progress = [self._progress[t.task_arn] for t in self._targets if t.task_arn in self._progress]
        return replies.live_message(
            order, self._targets, progress, elapsed, self._redactor, tail_lines=self._live.settings.tail_lines
        )

    async def event(self, order: RunOrder, event: RunEvent) -> None:
        if not isinstance(event, TargetProgress) or self._live_message is None:
            return
        before = self._progress.get(event.target.task_arn)
        self._progress[event.target.task_arn] = event
        # New output is worth an update; a silent command only gets its elapsed time refreshed now and
        # then, so it does not spend the workspace's budget on a ticking clock.
        if before is None or event.bytes != before.bytes or event.elapsed_s - self._shown_at >= IDLE_REFRESH_S:
            self._shown_at = event.elapsed_s
            self._live_message.changed()

    async def _stop_live(self) -> None:
        if self._live_message is not None:
            await self._live_message.close()
            self._live_message = None
        if self._live is not None and self._ts is not None:
            # The final update always goes out, and it counts: live updates of other runs yield to it.
            self._live.budget().take(force=True)

    def _requester(self, order: RunOrder) -> Replier:
        return requester_replier(
            self._client, response_url=order.origin.reply_url, channel=order.channel_id, user=order.requester,
            thread_ts=order.origin.thread_ts,
        )

    async def finished(self, order: RunOrder, results: Sequence[ExecResult], cancel_reason: str | None) -> None:
        # The command ran (and is audited): a Slack failure from here on is reported, not a failed run.
        assert self._ts is not None
        await self._stop_live()
        try:
            text, blocks = replies.result_message(
                order, list(results), cancel_reason=cancel_reason, redactor=self._redactor,
                filterable=self._filterable and any(r.output.total_bytes for r in results),
            )
            await update_message(self._client, order.channel_id, self._ts, text, blocks)
            await self._upload_full_outputs(order, list(results))
        except BotError as exc:
            log.warning("request %s ran but its result could not be shown: %s", order.request_id, exc.user_text())
            await self._requester(order)(*replies.refusal(exc))

    async def failed(self, order: RunOrder, sentence: str, error: BotError | None) -> None:
        await self._stop_live()
        if error is not None:
            await self._requester(order)(*replies.refusal(error))
        if self._ts is not None:
            text, blocks = replies.error_message(order, sentence, self._redactor)
            await _best_effort_update(self._client, order.channel_id, self._ts, text, blocks)

    async def _upload_full_outputs(self, order: RunOrder, results: list[ExecResult]) -> None:
        assert self._ts is not None
        thread = order.origin.thread_ts or self._ts  # the incident's thread, or the result's own
        for result, needed in zip(results, replies.files_needed(results, self._redactor), strict=True):
            if not needed:
                continue
            filename, title, content = replies.output_file(order, result, self._redactor)
            try:
                await upload_text_file(self._client, order.channel_id, thread, filename, title, content)
            except BotError as exc:
                # The message already carries head and tail; a failed upload is worth a sentence, not a failure.
                await self._requester(order)(*replies.refusal(exc))


def slack_run(services: Services, client: AsyncWebClient, live: LiveUpdates | None) -> SlackRun:
    """The sink of one plain or approved run of this app."""
    return SlackRun(client, services.redactor, live, filterable=services.followups.enabled)


async def request_approval(
    services: Services, client: AsyncWebClient, order: RunOrder, rule: str | None, approval: ApprovalRuleLike | None
) -> None:
    """Store the request, then post its card; nobody can approve a card nobody sees, so a failed post
    withdraws the request before the requester is told."""
    if approval is None:  # a policy bug; refuse rather than run unapproved
        raise ApprovalError("This rule needs approval but names no approvers.", fix="Ask the bot's admins to fix the rule.")
    record = await services.runs.open_approval(order, rule or "", approval)
    try:
        ts = await post_approval_card(client, services.redactor, record)
    except BotError:
        await services.runs.cancel(record.request_id, record.requester)
        raise
    await services.runs.set_message_ts(record.request_id, ts)


async def post_approval_card(client: AsyncWebClient, redactor: Redactor, record: RunRecord) -> str:
    """The card goes where the request was made: the channel, or the incident's thread."""
    text, blocks = replies.approval_message(record, redactor)
    thread_ts = str(record.params.get("thread_ts") or "") or None
    return await post_message(client, record.channel, text, blocks, thread_ts=thread_ts)


async def show_card(
    client: AsyncWebClient, ledger: RunLedger, redactor: Redactor, record: RunRecord, *, reread: bool = True
) -> None:
    """Render ``record``'s state into its approval card. With ``reread``, read it once more after the
    update: if another replica changed it meanwhile, render that too, so a slow update never leaves a
    stale state."""
    for _ in range(2):
        if record.message_ts is None or record.state is RunState.RUNNING:
            return  # not posted yet / the run's own messages own it now
        text, blocks = replies.approval_message(record, redactor)
        await update_message(client, record.channel, record.message_ts, text, blocks)
        if not reread:
            return
        latest = await ledger.find(record.request_id)
        if latest is None or (latest.state, len(latest.votes)) == (record.state, len(record.votes)):
            return
        record, reread = latest, False


async def maintain(services: Services, client: AsyncWebClient) -> list[RunRecord]:
    """Expire overdue requests and fail runs stuck on a dead replica (ending their sessions), then update
    their messages. Run at start-up and periodically (`maintenance_loop`)."""
    runs = services.runs

    async def terminate(record: RunRecord, session_id: str) -> None:
        await services.backend.terminate_session(record.environment, session_id, requester=record.requester)

    await runs.heartbeat()
    expired = await runs.expire_due()
    failed = await runs.recover_stuck(terminate)
    for record, message in [
        *((r, replies.approval_message(r, services.redactor)) for r in expired),
        *((r, replies.recovered_run_message(r, services.redactor)) for r in failed),
    ]:
        if record.message_ts is None:
            continue
        try:
            await update_message(client, record.channel, record.message_ts, *message)
        except BotError as exc:
            log.warning("could not update message of request %s: %s", record.request_id, exc.user_text())
    return [*expired, *failed]


async def maintenance_loop(
    services: Services, client: AsyncWebClient, stop: asyncio.Event, interval_s: float = 10.0
) -> None:
    while not stop.is_set():
        try:
            await maintain(services, client)
        except Exception:  # a store hiccup must not end the loop; the next round retries
            log.exception("run maintenance failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_s)


async def _best_effort_update(
    client: AsyncWebClient, channel: str, ts: str, text: str, blocks: list[dict[str, Any]]
) -> None:
    try:
        await asyncio.wait_for(update_message(client, channel, ts, text, blocks), 10)
    except (BotError, TimeoutError, OSError) as exc:
        log.warning("could not update message %s: %r", ts, exc)
