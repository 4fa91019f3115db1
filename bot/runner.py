"""Run one command in one target: ECS ExecuteCommand, the SSM data channel, timeout, cancel, exit code.

The flow for one run:

1. (``asyncio.to_thread``) clients for the target's environment, assuming its role as the requester;
2. ``ecs.execute_command(interactive=True)`` with the command wrapped for an exit code when the
   container has a shell (``bot.exit_sentinel``); as is when it has none (the agent shlex-splits it);
3. the data channel (``bot.ssm.channel``) streams output through the sentinel filter into a bounded
   capture; the KMS target string comes from the task's container ``runtimeId``;
4. on timeout or cancel: Ctrl-C (``\\x03``) through the PTY, a short grace, then ``ssm:TerminateSession``,
   so the remote process is gone either way (closing the websocket alone would leave it running).

Every outcome is an ``ExecResult``; the runner itself only raises for programming errors.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from botocore.exceptions import BotoCoreError, ClientError

from bot.aws import THROTTLING_CODES, AwsClients, aws_call, describe_aws_error, error_code, error_message
from bot.config import DEFAULT_TIMEOUT_S, MAX_TIMEOUT_S
from bot.errors import AwsError, BotError, DataChannelError, ExecTimeout, TargetError
from bot.exit_sentinel import ExitSentinel, SentinelFilter
from bot.output.capture import BoundedCapture, CapturedOutput, CaptureLimits
from bot.output.live_tail import LiveTail
from bot.output.views import terminal_text
from bot.rate_budget import BudgetExhausted
from bot.ssm.channel import ChannelConfig, ChannelResult, DataChannelSession, SessionParams
from bot.ssm.control import Boto3SessionControl
from bot.ssm.errors import AgentClosedError
from bot.ssm.kms import Boto3DataKeyProvider
from bot.targets import Target, exec_enable_command

log = logging.getLogger(__name__)

Status = Literal["ok", "failed", "timeout", "cancelled", "error"]
ClientsProvider = Callable[[str, "str | None"], AwsClients]  # (environment, requester) -> clients; blocking
OnStarted = Callable[[str], "Awaitable[None] | None"]  # called with the session id once it exists
# Called on the event loop with each piece of the command's raw PTY output (exit sentinel already
# removed), in order, as it arrives: the CLI streams it whole while the capture keeps head + tail.
OnOutput = Callable[[bytes], None]
CTRL_C = b"\x03"


@dataclass(frozen=True)
class ExecProgress:
    """What a running command has printed so far (cleaned, not yet redacted: the adapter redacts)."""

    bytes: int
    lines: int
    tail_text: str  # the last few complete lines
    elapsed_s: float


OnProgress = Callable[[ExecProgress], "Awaitable[None] | None"]


@dataclass(frozen=True)
class ExecResult:
    target: Target
    command: str  # exactly what the user asked for (not the sentinel wrapper)
    exit_code: int | None  # None: unknown (no shell in the container, or the command was interrupted)
    status: Status
    duration_s: float
    output: CapturedOutput  # raw PTY bytes, bounded (head + tail), with counters and SHA-256
    session_id: str | None
    error: BotError | None = None
    channel: ChannelResult | None = field(default=None, repr=False)
    # Something the reader should know although the run succeeded, e.g. the data channel was lost after
    # the command had finished (its exit code and output are complete, the end was never confirmed).
    note: str | None = None

    @property
    def missing_messages(self) -> int:
        """Output messages the agent never delivered (it gave up resending them before closing)."""
        return self.channel.missing_messages if self.channel is not None else 0

    @property
    def text(self) -> str:
        """The cleaned output as one string (the CLI's view), with one-line markers where bytes were left
        out or lost."""
        return terminal_text(self.output, self.missing_messages)


class ExecRunner:
    def __init__(
        self,
        clients: ClientsProvider,
        *,
        capture_limits: CaptureLimits | None = None,
        channel_config: ChannelConfig | None = None,
        interrupt_grace: float = 2.0,
        terminate_wait: float | None = None,
        session_factory: Callable[..., DataChannelSession] = DataChannelSession,
        start_policy: StartPolicy | None = None,
        progress_interval: float = 1.0,
    ) -> None:
        self._clients = clients
        self._start_policy = start_policy or StartPolicy()
        self._limits = capture_limits or CaptureLimits()
        self._channel_config = channel_config or ChannelConfig()
        self._grace = interrupt_grace  # Ctrl-C -> TerminateSession
        # TerminateSession -> give up on the session; it makes run() end within the channel's close_timeout.
        self._terminate_wait = terminate_wait if terminate_wait is not None else self._channel_config.close_timeout + 5
        self._session_factory = session_factory
        # How often a running command reports progress (when asked to): a timer, never per output chunk.
        self._progress_interval = max(0.05, progress_interval)

    async def run(
        self,
        target: Target,
        command: str,
        *,
        timeout: float = DEFAULT_TIMEOUT_S,  # noqa: ASYNC109 - the contract's name; it is a budget, not a cancel
        requester: str | None = None,
        cancel: asyncio.Event | None = None,
        on_started: OnStarted | None = None,
        on_output: OnOutput | None = None,
        on_progress: OnProgress | None = None,
    ) -> ExecResult:
        timeout = max(0.1, min(float(timeout), MAX_TIMEOUT_S))
        started = time.monotonic()
        capture = BoundedCapture.from_limits(self._limits)
        live = LiveTail() if on_progress is not None else None
        sentinel = ExitSentinel.random() if target.shell else None
        filt: SentinelFilter | None = sentinel.filter() if sentinel else None

        def emit(data: bytes) -> None:
            if data:
                capture.write(data)
                if live is not None:
                    live.write(data)
                if on_output is not None:
                    on_output(data)

        def finish(status: Status, *, session_id: str | None = None, error: BotError | None = None,
                   channel: ChannelResult | None = None, note: str | None = None) -> ExecResult:
            if filt is not None:
                emit(filt.flush())
            snapshot = capture.result()
            exit_code = filt.exit_code if filt is not None else None
            if status == "ok" and exit_code not in (None, 0):
                status = "failed"
            return ExecResult(
                target=target, command=command, exit_code=exit_code, status=status,
                duration_s=time.monotonic() - started, output=snapshot, session_id=session_id,
                error=error, channel=channel, note=note,
            )

        try:
            clients = await asyncio.to_thread(self._clients, target.environment, requester)
            remote = sentinel.wrap(command, deadline_s=remote_deadline(timeout)) if sentinel else command
            session = await start_session(clients, target, remote,
                                          deadline=self._start_policy.clock() + timeout,
                                          policy=self._start_policy)
        except BotError as exc:
            return finish("error", error=exc)

        params = SessionParams(session["sessionId"], session["streamUrl"], session["tokenValue"],
                               target=target.ssm_target)

        def received(data: bytes) -> None:
            emit(filt.feed(data) if filt is not None else data)

        channel = self._session_factory(
            params,
            on_output=received,
            control=Boto3SessionControl(clients.ssm),
            data_keys=Boto3DataKeyProvider(clients.kms),
            config=self._channel_config,
        )
        running = asyncio.create_task(channel.run(), name=f"exec {params.session_id}")
        reporter: asyncio.Task[None] | None = None
        try:
            if on_started is not None:
                maybe = on_started(params.session_id)
                if inspect.isawaitable(maybe):
                    await maybe
            if on_progress is not None and live is not None:
                reporter = asyncio.create_task(
                    _report_progress(live, on_progress, started, self._progress_interval),
                    name=f"progress {params.session_id}",
                )
            try:
                outcome = await _first_of(running, timeout, cancel)
            finally:
                if reporter is not None:
                    reporter.cancel()
                    await asyncio.gather(reporter, return_exceptions=True)
            if outcome != "done":
                await self._interrupt(channel, running)
            result: ChannelResult | None = None
            if not running.cancelled():  # cancelled only when even TerminateSession did not end it
                try:
                    result = running.result()
                except BotError as exc:
                    if outcome == "done":
                        note = _finished_before(exc, filt.exit_code if filt is not None else None)
                        if note is not None:
                            log.warning("session %s: %s", params.session_id, note)
                            return finish("ok", session_id=params.session_id, note=note)
                        return finish("error", session_id=params.session_id, error=exc)
                    # an interrupted session may end with a channel error; the outcome says why
        except BaseException:
            # Our caller gave up on us (or on_started failed): the remote command must not outlive that.
            running.cancel()
            await asyncio.shield(self._terminate_quietly(channel))
            raise

        if outcome == "timeout":
            return finish("timeout", session_id=params.session_id, channel=result, error=ExecTimeout(
                f"The command ran longer than {timeout:g} s and was interrupted.",
                fix=f"Give it a longer --timeout (at most {MAX_TIMEOUT_S} s) or make it finish sooner "
                    "(`tail -n` instead of `tail -f`).",
            ))
        if outcome == "cancelled":
            return finish("cancelled", session_id=params.session_id, channel=result)
        if result is None:  # unreachable: a finished, non-failed run has a result
            raise AssertionError("channel run ended without a result")
        if result.closed_output:
            return finish("error", session_id=params.session_id, channel=result, error=DataChannelError(
                f"The session ended with an error from ECS Exec: {result.closed_output.strip()}",
                fix="Check that the command exists in the container and that its ExecuteCommandAgent is RUNNING.",
            ))
        return finish("ok", session_id=params.session_id, channel=result)

    async def _interrupt(self, channel: DataChannelSession, running: asyncio.Task[ChannelResult]) -> None:
        """Ctrl-C first (lets the command clean up), then TerminateSession if it is still there."""
        with contextlib.suppress(BotError):
            channel.send_input(CTRL_C)
        done, _ = await asyncio.wait({running}, timeout=self._grace)
        if not done:
            await self._terminate_quietly(channel)
        done, _ = await asyncio.wait({running}, timeout=self._terminate_wait)
        if not done:
            running.cancel()
            await asyncio.wait({running})  # let the cancellation finish before the caller looks at it

    @staticmethod
    async def _terminate_quietly(channel: DataChannelSession) -> None:
        try:
            await channel.terminate()
        except BotError as exc:
            log.warning("TerminateSession failed: %s", exc.user_text())


def _finished_before(exc: BotError, exit_code: int | None) -> str | None:
    """The note for a channel that failed after the command had finished, or None if that is not known.

    The exit sentinel is the wrapper's last line, printed once the command has exited, and the channel
    hands output over strictly in sequence order: once it is seen, every byte the command wrote before
    exiting has arrived. A channel that fails after that (the connection reset before ``channel_closed``,
    and ResumeSession then finds the session over) lost nothing of the command's output. A
    ``channel_closed`` that carries an error text is the service reporting a failure: that stays an error.
    """
    if exit_code is None or not isinstance(exc, DataChannelError) or isinstance(exc, AgentClosedError):
        return None
    return (f"The command finished (exit code {exit_code}); the data channel was then lost before ECS Exec "
            f"confirmed the end of the session, which does not affect the output. ({exc.message})")


# The remote command kills itself this long after the bot's own timeout (which interrupts it with Ctrl-C,
# then TerminateSession): only a lost session ever reaches it.
REMOTE_DEADLINE_MARGIN_S = 15


def remote_deadline(timeout: float) -> int:
    return int(math.ceil(timeout)) + REMOTE_DEADLINE_MARGIN_S


# TargetNotConnectedException right after a task starts: its agent is RUNNING but not yet connected to
# SSM. Usually gone within seconds, so retry a few times (1, 2, 4 s) before telling the user.
NOT_CONNECTED_RETRIES = 3
NOT_CONNECTED_BACKOFF_S = 1.0
# Throttled ExecuteCommand: full-jitter backoff capped here, for as long as the user's timeout allows.
THROTTLE_BACKOFF_BASE_S = 0.5
THROTTLE_BACKOFF_CAP_S = 5.0


@dataclass(frozen=True)
class StartPolicy:
    """How ``start_session`` waits and retries (injectable so tests need not wait)."""

    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    jitter: Callable[[float, float], float] = random.uniform


async def start_session(clients: AwsClients, target: Target, remote_command: str, *,
                        deadline: float | None = None, policy: StartPolicy = StartPolicy()) -> dict[str, Any]:
    """``ecs:ExecuteCommand`` within the environment's budget; returns the SSM session (sessionId,
    streamUrl, tokenValue). Throttling is retried with jitter until ``deadline`` (``policy.clock``), a
    not-yet-connected agent a few times; then one sentence that says what was tried."""
    started = policy.clock()
    deadline = deadline if deadline is not None else started + DEFAULT_TIMEOUT_S
    throttled = not_connected = 0
    while True:
        try:
            await clients.execute_budget.acquire(max_wait=deadline - policy.clock())
        except BudgetExhausted as exc:
            raise AwsError(
                f"The bot's ExecuteCommand budget for environment {target.environment} is used up: no session "
                f"could start within {exc.waited:.0f} s.",
                fix="Retry in a moment; if it keeps happening, run fewer tasks at once or raise "
                    "execute_command_per_second for the environment (mind the account's shared ECS limit).",
            ) from None
        try:
            response = await aws_call(
                clients.ecs.execute_command,
                attempts=1,  # throttling is retried below, within the user's deadline
                cluster=target.cluster,
                task=target.task_arn,
                container=target.container,
                command=remote_command,
                interactive=True,  # the only mode ECS supports
            )
            return response["session"]
        except (ClientError, BotoCoreError) as exc:
            code = error_code(exc)
            now = policy.clock()
            if code in THROTTLING_CODES:
                throttled += 1
                pause = policy.jitter(0, min(THROTTLE_BACKOFF_CAP_S, THROTTLE_BACKOFF_BASE_S * 2 ** throttled))
                if now + pause < deadline:
                    await policy.sleep(pause)
                    continue
                raise AwsError(
                    f"AWS kept throttling ecs:ExecuteCommand for {now - started:.0f} s ({throttled} attempts).",
                    fix="Retry in a minute; if it persists, run fewer tasks at once (the account's ExecuteCommand "
                        "limit is shared with RunTask/StopTask) or ask for a quota increase.",
                ) from None
            if code == "TargetNotConnectedException" and not_connected < NOT_CONNECTED_RETRIES:
                pause = NOT_CONNECTED_BACKOFF_S * 2 ** not_connected
                if now + pause < deadline:
                    not_connected += 1
                    log.info("task %s: agent not connected yet, retry %d in %.0f s", target.task_id,
                             not_connected, pause)
                    await policy.sleep(pause)
                    continue
            error = execute_command_error(exc, target)
            if code == "TargetNotConnectedException" and not_connected:
                error = TargetError(
                    f"{error.message.rstrip('.')} (still, after {not_connected} retries over "
                    f"{now - started:.0f} s: not just a task that had only started).", fix=error.fix)
            raise error from None


def execute_command_error(exc: BaseException, target: Target) -> BotError:
    code, message = error_code(exc), error_message(exc)
    doctor = f"`ecs-exec-bot doctor {target.service} --cluster {target.cluster} --task {target.task_id}`"
    if code == "InvalidParameterException" and "execute command" in message and "not enabled" in message:
        return TargetError(
            f"ECS refused to exec into task {target.task_id}: ECS Exec is not enabled on it or its "
            "ExecuteCommandAgent is not running.",
            fix=f"Run `{exec_enable_command(target.cluster, target.service)}`; if exec is already enabled, "
                f"run {doctor}.",
        )
    if code == "TargetNotConnectedException":
        return TargetError(
            f"The ExecuteCommandAgent of task {target.task_id} is not connected to SSM.",
            fix="Check that the agent is RUNNING, that the task role allows ssmmessages:CreateControlChannel, "
                "CreateDataChannel, OpenControlChannel and OpenDataChannel, and that the task's subnets reach "
                f"ssmmessages (VPC endpoint or NAT); {doctor} checks all three.",
        )
    if code == "ClusterNotFoundException":
        return TargetError(f"Unknown cluster {target.cluster!r}.",
                           fix="Check the cluster name and the environment's account/region.")
    if code == "InvalidParameterException":
        return TargetError(f"ECS refused to exec into task {target.task_id}: {message.rstrip('.')}.",
                           fix=f"Run {doctor} for the full checklist.")
    return describe_aws_error(exc, action="ecs:ExecuteCommand", resource=target.task_arn)


async def _report_progress(live: LiveTail, on_progress: OnProgress, started: float, interval: float) -> None:
    """Every ``interval`` seconds: what the command printed so far. A failing callback is logged, once, and
    never ends the run (progress is a courtesy; the result is what counts)."""
    warned = False
    while True:
        await asyncio.sleep(interval)
        progress = ExecProgress(live.total_bytes, live.lines, live.text(), time.monotonic() - started)
        try:
            maybe = on_progress(progress)
            if inspect.isawaitable(maybe):
                await maybe
        except Exception:
            if not warned:
                log.exception("progress callback failed; the run goes on")
                warned = True


async def _first_of(running: asyncio.Task[Any], seconds: float,
                    cancel: asyncio.Event | None) -> Literal["done", "timeout", "cancelled"]:
    waiters: set[asyncio.Future[Any]] = {running}
    cancel_wait: asyncio.Task[Any] | None = None
    if cancel is not None:
        cancel_wait = asyncio.create_task(cancel.wait())
        waiters.add(cancel_wait)
    try:
        done, _ = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        if cancel_wait is not None and not cancel_wait.done():
            cancel_wait.cancel()
    if running in done:
        return "done"
    return "cancelled" if cancel_wait is not None and cancel_wait in done else "timeout"
