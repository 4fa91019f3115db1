"""One running demo: the real bot served on 127.0.0.1 against the stand-ins, driven like Slack drives it.

`DemoSession.running_demo()` starts the stand-ins and the bot (`handlers.server.runtime.serve`, the production
HTTP listener with Bolt's signature check) and stops both on exit, even on Ctrl-C. `command()` and
`click()` post signed requests as a given user, wait until the bot has finished everything the request
started (its tracked jobs), and return what the channel saw as `standins.demo.channel` events.

The bot is wired by the production `handlers.app.build_slack_services` (config file, SQLite store, auditor,
limits, redaction, approvals); only its AWS backend is pointed at the stand-ins.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp

from handlers.actions import APPROVE, CANCEL, DENY
from standins.demo.channel import Event, UserAction, ack_message, channel_events
from standins.demo.slack_payloads import (
    Channel,
    app_mention_body,
    block_actions_body,
    find_button,
    sign,
    slash_command_body,
    view_submission_body,
)
from standins.demo.stand_ins import CONFIG_PATH, HOST, REGION, DemoError, StandIns
from standins.demo.transcript import Names

if TYPE_CHECKING:
    from handlers.server.runtime import RunningBot

__all__ = ["APPROVE", "CANCEL", "CHANNEL", "DENY", "USERS", "DemoSession", "OpenRequest"]

log = logging.getLogger("ecs_exec_standins.demo")

CHANNEL = Channel("C0INCIDENT", "incident")
USERS = {"U0ALICE": "alice", "U0BOB": "bob"}
BUTTON_LABELS = {APPROVE: "Approve", DENY: "Deny", CANCEL: "Cancel", "ecs_exec_filter": "🔎 Filter"}
# Longer than any command may run under the demo policy (30 s), so a step never ends half-done.
STEP_TIMEOUT_S = 60.0
_FORM, _JSON = "application/x-www-form-urlencoded", "application/json"


@dataclass(frozen=True)
class OpenRequest:
    request_id: str
    ts: str
    actions: tuple[str, ...]  # action ids of the buttons still on the message


class DemoSession:
    def __init__(
        self, stand_ins: StandIns, running: RunningBot, secret: str, http: aiohttp.ClientSession
    ) -> None:
        self.stand_ins = stand_ins
        self.running = running
        self._secret = secret
        self._http = http
        self._seq = itertools.count(1)
        self._responders: dict[str, str] = {}
        fake = stand_ins.slack
        self.names = Names(
            users={**USERS, fake.bot_user_id: "ecs-exec"},
            channels={CHANNEL.id: CHANNEL.name},
        )

    @property
    def bot_url(self) -> str:
        return str(self.running.url)

    @property
    def bot_user_id(self) -> str:
        return str(self.stand_ins.slack.bot_user_id)

    @classmethod
    @asynccontextmanager
    async def running_demo(cls) -> AsyncIterator[DemoSession]:
        stand_ins = await StandIns.open()
        try:
            secret = secrets.token_hex(16)
            async with _served_bot(stand_ins, secret) as running, aiohttp.ClientSession() as http:
                await stand_ins.wait_for_ecs()
                yield cls(stand_ins, running, secret, http)
        finally:
            await stand_ins.close()

    # -- what a user does -------------------------------------------------------------------------------
    async def command(self, user_id: str, text: str) -> list[Event]:
        """``/ecs-exec <text>`` typed by ``user_id`` in #incident."""
        n = next(self._seq)
        key = f"cmd{n}"
        self._responders[key] = user_id
        body = slash_command_body(
            text=text,
            user_id=user_id,
            user_name=USERS.get(user_id, user_id),
            channel=CHANNEL,
            response_url=self.stand_ins.slack.response_url(key),
            trigger_id=f"{n}.{int(time.time())}.demo{secrets.token_hex(4)}",
        )
        action = UserAction(user_id, f"/ecs-exec {text}", CHANNEL.id)
        return await self._step(user_id, body, action, ack_is_message=True)

    async def click(self, user_id: str, action_id: str, request_id: str | None = None) -> list[Event]:
        """``user_id`` clicks a button (Approve / Deny / Cancel) on an approval message: the given
        request's, or the newest one showing that button."""
        found = self._find_button(action_id, request_id)
        if found is None:
            which = f"request {request_id}" if request_id else "any message"
            raise DemoError(
                f"There is no {BUTTON_LABELS.get(action_id, action_id)} button on {which} right now.",
                fix="Type :requests to list the open requests.",
            )
        ts, message, block_id, button = found
        n = next(self._seq)
        key = f"click{n}"
        self._responders[key] = user_id
        body = block_actions_body(
            user_id=user_id,
            user_name=USERS.get(user_id, user_id),
            channel=CHANNEL,
            message_ts=ts,
            message=message,
            block_id=block_id,
            button=button,
            response_url=self.stand_ins.slack.response_url(key),
            trigger_id=f"{n}.{int(time.time())}.demo{secrets.token_hex(4)}",
            action_ts=f"{time.time():.6f}",
        )
        label = BUTTON_LABELS.get(action_id, action_id)
        request = str(button.get("value") or "").partition("|")[0]
        # Slack shows a button's `confirm` dialog before it sends the click: the demo user confirms.
        confirmed = " and confirms" if button.get("confirm") else ""
        action = UserAction(user_id, f"clicks [ {label} ]{confirmed} on request {request}", CHANNEL.id)
        return await self._step(user_id, body, action, ack_is_message=False)

    def open_requests(self) -> list[OpenRequest]:
        """Approval messages that still have buttons, oldest first."""
        out = []
        for ts, message in sorted(dict(self.stand_ins.slack.messages).items()):
            actions = []
            request_id = None
            for action_id in (APPROVE, DENY, CANCEL):
                found = find_button(message.get("blocks"), action_id)
                if found is not None:
                    actions.append(action_id)
                    request_id = str(found[1].get("value") or "").partition("|")[0]
            if actions and request_id:
                out.append(OpenRequest(request_id, ts, tuple(actions)))
        return out

    # -- internals ----------------------------------------------------------------------------------------
    def _find_button(
        self, action_id: str, request_id: str | None
    ) -> tuple[str, dict[str, Any], str | None, dict[str, Any]] | None:
        for ts, message in sorted(dict(self.stand_ins.slack.messages).items(), reverse=True):
            found = find_button(message.get("blocks"), action_id)
            if found is None:
                continue
            block_id, button = found
            if request_id is None or str(button.get("value") or "").partition("|")[0] == request_id:
                return ts, message, block_id, button
        return None

    # -- in a thread: mentions, live progress, follow-ups -----------------------------------------------------
    def start_thread(self, user_id: str, text: str) -> tuple[str, list[Event]]:
        """``user_id`` posts ``text`` in #incident; the thread under it is where the incident is worked."""
        return f"{time.time():.6f}", [UserAction(user_id, text, CHANNEL.id)]

    async def mention(self, user_id: str, text: str, thread_ts: str) -> list[Event]:
        """``@ecs-exec <text>`` by ``user_id`` in the thread."""
        body, action = self._mention_body(user_id, text, thread_ts)
        return await self._step(user_id, body, action, ack_is_message=False, content_type=_JSON)

    async def mention_and_cancel(
        self, user_id: str, text: str, thread_ts: str, *, cancel_by: str, after_s: float, traffic: str | None = None
    ) -> list[Event]:
        """``@ecs-exec <text>`` in the thread; once it has run ``after_s`` seconds, ``cancel_by`` clicks its
        Cancel. Every update of the run's message is shown, as the thread saw it change (live progress).
        ``traffic``: a log in the task (container path) that requests keep appending to meanwhile."""
        fake = self.stand_ins.slack
        mark, known = len(fake.calls("/")), set(dict(fake.messages))
        body, action = self._mention_body(user_id, text, thread_ts)
        await self._post(body, _JSON)
        started = time.monotonic()
        serving = asyncio.create_task(self._serve_traffic(traffic)) if traffic else None
        try:
            while self._find_button(CANCEL, None) is None or time.monotonic() - started < after_s:
                if time.monotonic() - started > STEP_TIMEOUT_S:
                    raise DemoError("The command never showed its Cancel button.", fix="Run the demo again.")
                await asyncio.sleep(0.05)
        finally:
            if serving is not None:
                serving.cancel()
        live = self._events(mark, known, user_id, "", ack_is_message=False, before=[action], show_updates=True,
                            until=len(fake.calls("/")))
        return [*live, *await self.click(cancel_by, CANCEL)]

    async def filter_form(self, user_id: str, pattern: str, *, show: str = "head", lines: int | None = None,
                          switches: tuple[str, ...] = ()) -> list[Event]:
        """``user_id`` clicks 🔎 Filter under the newest result, fills in the form and submits it."""
        from bot.output.followup_render import (
            FILTER_ACTION,
            FILTER_LINES,
            FILTER_OPTIONS,
            FILTER_PATTERN,
            FILTER_SHOW,
        )

        fake = self.stand_ins.slack
        opened = len(fake.calls("/api/views.open"))
        await self.click(user_id, FILTER_ACTION)
        calls = fake.calls("/api/views.open")
        if len(calls) <= opened:
            raise DemoError("The filter form did not open.", fix="Run the demo again.")
        view = fake.views[max(fake.views, key=lambda view_id: view_id)]
        values = {
            FILTER_PATTERN: {FILTER_PATTERN: {"type": "plain_text_input", "value": pattern}},
            FILTER_OPTIONS: {FILTER_OPTIONS: {"type": "checkboxes", "selected_options": [{"value": s} for s in switches]}},
            FILTER_SHOW: {FILTER_SHOW: {"type": "radio_buttons", "selected_option": {"value": show}}},
            FILTER_LINES: {FILTER_LINES: {"type": "number_input", "value": str(lines) if lines else None}},
        }
        body = view_submission_body(user_id=user_id, user_name=USERS.get(user_id, user_id), view=view, values=values,
                                    trigger_id=f"{next(self._seq)}.{int(time.time())}.demo{secrets.token_hex(4)}")
        how = {"head": "first lines", "tail": "last lines", "count": "count only"}[show]
        extras = "".join(f", {s.replace('_', ' ')}" for s in switches) + (f", {lines} lines" if lines else "")
        action = UserAction(user_id, f"clicks [ 🔎 Filter ]: pattern `{pattern}`, {how}{extras} · [ Filter ]",
                            CHANNEL.id)
        return await self._step(user_id, body, action, ack_is_message=False)

    async def _serve_traffic(self, log_path: str) -> None:
        """The task keeps serving while someone watches its log: a request line every 0.4 s."""
        path = self.stand_ins.sandbox_dir / log_path.lstrip("/")
        for n in itertools.count():
            status = (200, 200, 502, 200, 504)[n % 5]
            stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime())
            line = (f'10.0.3.{7 + n % 40} - - [{stamp}] "GET /api/orders/{1000 + n} HTTP/1.1" {status} '
                    f'{157 if status != 200 else 1024} "-" "Mozilla/5.0"\n')
            await asyncio.to_thread(_append, path, line)
            await asyncio.sleep(0.4)

    def _mention_body(self, user_id: str, text: str, thread_ts: str) -> tuple[str, UserAction]:
        n = next(self._seq)
        body = app_mention_body(text=text, user_id=user_id, bot_user_id=self.bot_user_id, channel=CHANNEL,
                                ts=f"{time.time():.6f}", thread_ts=thread_ts, event_id=f"Ev{n:08d}demo")
        return body, UserAction(user_id, f"@ecs-exec {text}   (in the thread)", CHANNEL.id)

    async def _post(self, body: str, content_type: str = _FORM) -> str:
        request = sign(self._secret, body, int(time.time()), content_type)
        async with self._http.post(
            f"{self.bot_url}/slack/events", data=body.encode(), headers=request.headers
        ) as resp:
            ack = await resp.text()
            if resp.status != 200:
                raise DemoError(
                    f"The bot answered HTTP {resp.status} to a signed request ({ack[:200]}).",
                    fix="This is a bug in the demo or the bot; please report it with the transcript.",
                )
        return ack

    async def _step(self, user_id: str, body: str, action: UserAction, *, ack_is_message: bool,
                    content_type: str = _FORM) -> list[Event]:
        fake = self.stand_ins.slack
        mark = len(fake.calls("/"))
        known = set(dict(fake.messages))
        ack = await self._post(body, content_type)
        await self.settle()
        return self._events(mark, known, user_id, ack, ack_is_message=ack_is_message, before=[action])

    def _events(self, mark: int, known: set[str], user_id: str, ack: str, *, ack_is_message: bool,
                before: list[Event], show_updates: bool = False, until: int | None = None) -> list[Event]:
        fake = self.stand_ins.slack
        events: list[Event] = list(before)
        if ack_is_message:
            acked = ack_message(ack, bot_id=self.bot_user_id, user_id=user_id, channel_id=CHANNEL.id)
            if acked is not None:
                events.append(acked)
        messages = dict(fake.messages)
        events += channel_events(
            fake.calls("/")[mark:until],
            messages=messages,
            uploads=dict(fake.uploads),
            new_ts=sorted(ts for ts in messages if ts not in known),
            bot_id=self.bot_user_id,
            responder_of=self._responders,
            show_updates=show_updates,
        )
        return events

    async def settle(self, within: float = STEP_TIMEOUT_S) -> None:
        """Wait until the bot has no tracked job left: everything a request started has been said."""
        jobs = self.running.services.jobs
        deadline = time.monotonic() + within
        while jobs.running():
            if time.monotonic() > deadline:
                raise DemoError(
                    f"The bot was still busy after {within:.0f} s.",
                    fix="Press Ctrl-C to stop the demo, then run it again.",
                )
            await asyncio.sleep(0.01)


@asynccontextmanager
async def _served_bot(stand_ins: StandIns, secret: str) -> AsyncIterator[RunningBot]:
    """`handlers.server.runtime.serve` on 127.0.0.1:0 with Slack pointed at the stand-in; drained on exit."""
    from bot.settings import Settings
    from handlers.app import SlackSettings, build_slack_services
    from handlers.server.runtime import ServeOptions, serve

    fake = stand_ins.slack
    slack = SlackSettings(bot_token=fake.bot_token, signing_secret=secret, app_token=None, api_url=fake.api_url)
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]  # the user's .env is for the real bot
        slack_bot_token=fake.bot_token,
        slack_signing_secret=secret,
        slack_app_token=None,
        slack_api_url=fake.api_url,
        config_file=CONFIG_PATH,
        store="sqlite",
        sqlite_path=stand_ins.store_path,
        audit_channel=None,
        aws_region=REGION,
    )

    async def services_factory(client: Any, info: dict[str, Any]) -> Any:
        return await build_slack_services(settings, client, info, session_factory=stand_ins.session_factory())

    loop = asyncio.get_running_loop()
    ready: asyncio.Future[RunningBot] = loop.create_future()
    stop = asyncio.Event()
    options = ServeOptions(host=HOST, port=0, drain_grace=5.0, cancel_grace=2.0)
    served = asyncio.create_task(
        serve(slack, services_factory, options, stop=stop, on_ready=_setter(ready), install_signal_handlers=False)
    )
    try:
        await asyncio.wait({ready, served}, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done():
            served.result()  # start-up failed: raise its error
            raise DemoError("The bot stopped during start-up.", fix="Run the demo again.")
        yield ready.result()
    finally:
        stop.set()
        # Drain: lets a running command finish (or cancels it) and closes the listener and the store.
        try:
            await asyncio.shield(served)
        except Exception:
            if ready.done():  # a start-up failure was raised above already
                log.exception("the bot did not stop cleanly")


def _append(path: Any, line: str) -> None:
    with open(path, "a", encoding="utf-8") as log_file:
        log_file.write(line)


def _setter(future: asyncio.Future[Any]) -> Callable[[Any], None]:
    def set_result(value: Any) -> None:
        if not future.done():
            future.set_result(value)

    return set_result
