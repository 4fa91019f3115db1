"""FakeSlack: a local Slack Web API that records every call, for the offline demo and the tests.

Shipped (not test-only) because ``ecs-exec-bot demo`` runs the real bot against it; the tests import it
through ``tests.support.fake_slack``.

A stdlib ``ThreadingHTTPServer`` on 127.0.0.1:0, so it serves sync and async clients alike and any
number of event loops. Point a client at ``fake.api_url`` (``http://127.0.0.1:<port>/api/``) and
payloads' ``response_url`` at ``fake.response_url(key)``.

What it answers (everything else is ``{"ok": true}``):

- ``auth.test`` (``invalid_auth`` for any token but ``bot_token``), ``apps.connections.open`` (needs
  ``app_token``; returns ``socket_url``), ``chat.postMessage`` / ``chat.update`` (keeps the latest
  version of each message in ``messages``), ``chat.postEphemeral``, ``users.info`` (from ``users``),
  ``usergroups.users.list`` (from ``usergroups``; ``no_such_subteam`` otherwise);
- ``views.open`` (gives the view an id and a hash), ``views.update`` (by ``view_id``; ``not_found`` for an
  unknown id, ``hash_conflict`` when a ``hash`` is given and is not the current one), ``views.publish``
  (the Home tab, latest per user in ``homes``); open modals are in ``views`` by id;
- the three-step ``files_upload_v2``: ``files.getUploadURLExternal`` hands out ``<url>/upload/<file id>``,
  the raw POST there lands in ``uploads``, ``files.completeUploadExternal`` records the share;
- ``/response/<key>``: the response_url sink.

Tests inject failures with ``fail(method, error, times)``, ``rate_limit(method, retry_after, times)`` or
a free-form ``overrides[method] = fn(call) -> Reply``; ``wait_for(prefix, count)`` polls for calls.
``enforce_rate_limit(method, per_minute)`` makes a method behave like Slack's tiers: over ``per_minute``
calls in a one-minute window, HTTP 429 with ``Retry-After`` (seconds to the next window); the refused
calls are counted in ``rate_limited[method]`` (and recorded like any call).
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

# Parameters the SDK sends as JSON strings inside a form body; decoded so tests can inspect them.
_JSON_PARAMS = ("blocks", "attachments", "files", "users", "view")


@dataclass(frozen=True)
class Call:
    """One request the fake received."""

    path: str  # "/api/chat.postMessage", "/response/c1", "/upload/F0001"
    headers: dict[str, str]
    body: bytes
    params: dict[str, Any]  # form or JSON fields (JSON-in-form values decoded); {} for raw uploads
    at: float

    @property
    def method(self) -> str | None:
        """The Web API method name for ``/api/...`` calls."""
        return self.path.removeprefix("/api/") if self.path.startswith("/api/") else None

    @property
    def token(self) -> str | None:
        auth = self.headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            return auth[7:]
        tok = self.params.get("token")
        return tok if isinstance(tok, str) else None

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class Reply:
    """What an override answers: an HTTP status, a JSON body and extra headers."""

    body: dict[str, Any]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Override = Callable[[Call], Reply | None]  # None = fall through to the default behaviour


class FakeSlack:
    def __init__(
        self,
        *,
        bot_token: str = "xoxb-test-token",
        app_token: str = "xapp-1-test-token",
        team_id: str = "T0TEAM",
        app_id: str = "A0APP",
        bot_user_id: str = "U0BOT",
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.team_id = team_id
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.socket_url: str | None = None  # what apps.connections.open returns
        self.usergroups: dict[str, list[str]] = {}
        # channel id -> members; a channel not listed has everyone (chat.postEphemeral checks membership).
        self.channel_members: dict[str, set[str]] = {}
        self.users: dict[str, dict[str, Any]] = {}
        self.overrides: dict[str, Override] = {}
        self.messages: dict[str, dict[str, Any]] = {}  # ts -> latest params of that message
        self.uploads: dict[str, bytes] = {}  # file id -> raw bytes
        self.views: dict[str, dict[str, Any]] = {}  # view id -> the latest view (with its id and hash)
        self.homes: dict[str, dict[str, Any]] = {}  # user id -> the latest published Home view
        self.rate_limited: dict[str, int] = {}  # method -> 429s answered by enforce_rate_limit
        self._limits: dict[str, _Window] = {}
        self._calls: list[Call] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ids = itertools.count(1)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> FakeSlack:
        fake = self

        class Handler(_Handler):
            owner = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll interval: shutdown() waits up to one interval, and tests stop many fakes.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-slack", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeSlack is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api/"

    def response_url(self, key: str) -> str:
        return f"{self.url}/response/{key}"

    # -- inspection --------------------------------------------------------------------------------
    def calls(self, prefix: str = "") -> list[Call]:
        """Calls whose path starts with ``prefix`` ("/api/chat." or a bare method name "chat.update")."""
        path_prefix = prefix if prefix.startswith("/") else f"/api/{prefix}"
        with self._lock:
            return [c for c in self._calls if c.path.startswith(path_prefix)]

    def wait_for(self, prefix: str, count: int = 1, timeout: float = 15.0) -> list[Call]:
        """Block until at least ``count`` matching calls arrived; raise with what did arrive otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                got = self._matching(prefix)
                if len(got) >= count:
                    return got
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [c.path for c in self._calls]
                    raise AssertionError(
                        f"expected {count} call(s) to {prefix!r}, got {len(got)}; seen {seen}"
                    )
                self._changed.wait(remaining)

    async def await_for(self, prefix: str, count: int = 1, within: float = 15.0) -> list[Call]:
        """``wait_for`` for async tests (runs the blocking wait in a thread)."""
        import asyncio

        return await asyncio.to_thread(self.wait_for, prefix, count, within)

    def _matching(self, prefix: str) -> list[Call]:
        path_prefix = prefix if prefix.startswith("/") else f"/api/{prefix}"
        return [c for c in self._calls if c.path.startswith(path_prefix)]

    # -- failure injection -------------------------------------------------------------------------
    def fail(self, method: str, error: str, times: int = 1) -> None:
        """The next ``times`` calls to ``method`` answer ``{"ok": false, "error": error}``."""
        self._inject(method, Reply({"ok": False, "error": error}), times)

    def rate_limit(self, method: str, retry_after: int = 0, times: int = 1) -> None:
        """The next ``times`` calls to ``method`` answer HTTP 429 with ``Retry-After``."""
        reply = Reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(retry_after)})
        self._inject(method, reply, times)

    def enforce_rate_limit(self, method: str, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        """At most ``per_minute`` calls to ``method`` per one-minute window (Slack's tiers count per
        minute, per workspace and app); the rest answer 429 + ``Retry-After`` until the next window."""
        self._limits[method] = _Window(per_minute, clock)

    def _inject(self, method: str, reply: Reply, times: int) -> None:
        left = [times]
        previous = self.overrides.get(method)

        def override(call: Call) -> Reply | None:
            with self._lock:
                if left[0] > 0:
                    left[0] -= 1
                    return reply
            return previous(call) if previous else None

        self.overrides[method] = override

    # -- request handling (called from server threads) -------------------------------------------
    def _record(self, call: Call) -> None:
        with self._changed:
            self._calls.append(call)
            self._changed.notify_all()

    def _next_id(self) -> int:
        with self._lock:
            return next(self._ids)

    def _answer_api(self, call: Call) -> Reply:
        method = call.method or ""
        window = self._limits.get(method)
        if window is not None:
            with self._lock:
                wait = window.admit()
                if wait is not None:
                    self.rate_limited[method] = self.rate_limited.get(method, 0) + 1
            if wait is not None:
                return Reply({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": str(wait)})
        override = self.overrides.get(method)
        if override is not None:
            reply = override(call)
            if reply is not None:
                return reply
        handler = getattr(self, "_api_" + method.replace(".", "_"), None)
        if handler is None:
            return Reply({"ok": True})
        return handler(call)

    def _api_auth_test(self, call: Call) -> Reply:
        if call.token != self.bot_token:
            return Reply({"ok": False, "error": "invalid_auth"})
        return Reply(
            {
                "ok": True,
                "url": "https://fake.slack.com/",
                "team": "Fake",
                "user": "ecs-exec",
                "team_id": self.team_id,
                "user_id": self.bot_user_id,
                "bot_id": "B0BOT",
            }
        )

    def _api_bots_info(self, call: Call) -> Reply:
        if call.params.get("bot") != "B0BOT":
            return Reply({"ok": False, "error": "bot_not_found"})
        return Reply({"ok": True, "bot": {"id": "B0BOT", "app_id": self.app_id, "user_id": self.bot_user_id}})

    def _api_apps_connections_open(self, call: Call) -> Reply:
        if call.token != self.app_token:
            return Reply({"ok": False, "error": "invalid_auth"})
        if self.socket_url is None:
            return Reply({"ok": False, "error": "socket_url_not_set_in_fake"})
        return Reply({"ok": True, "url": self.socket_url})

    def _new_ts(self) -> str:
        return f"1700000000.{self._next_id():06d}"

    def _api_chat_postMessage(self, call: Call) -> Reply:
        ts = self._new_ts()
        with self._lock:
            self.messages[ts] = dict(call.params)
        return Reply({"ok": True, "channel": call.params.get("channel"), "ts": ts, "message": {"ts": ts}})

    def _api_chat_update(self, call: Call) -> Reply:
        ts = str(call.params.get("ts"))
        with self._lock:
            if ts not in self.messages:
                return Reply({"ok": False, "error": "message_not_found"})
            self.messages[ts] = {**self.messages[ts], **call.params}
        return Reply({"ok": True, "channel": call.params.get("channel"), "ts": ts})

    def _api_chat_postEphemeral(self, call: Call) -> Reply:
        # Slack refuses an ephemeral message to someone who is not in the channel.
        members = self.channel_members.get(str(call.params.get("channel")))
        if members is not None and str(call.params.get("user")) not in members:
            return Reply({"ok": False, "error": "user_not_in_channel"})
        return Reply({"ok": True, "message_ts": self._new_ts()})

    def _view_param(self, call: Call) -> dict[str, Any] | None:
        view = call.params.get("view")
        return view if isinstance(view, dict) else None

    def _api_views_open(self, call: Call) -> Reply:
        view = self._view_param(call)
        if view is None or not call.params.get("trigger_id"):
            return Reply({"ok": False, "error": "invalid_arguments"})
        n = self._next_id()
        stored = {**view, "id": f"V{n:08d}", "hash": f"{n}.h"}
        with self._lock:
            self.views[stored["id"]] = stored
        return Reply({"ok": True, "view": stored})

    def _api_views_update(self, call: Call) -> Reply:
        view, view_id = self._view_param(call), str(call.params.get("view_id") or "")
        if view is None:
            return Reply({"ok": False, "error": "invalid_arguments"})
        n = self._next_id()
        with self._lock:
            current = self.views.get(view_id)
            if current is None:
                return Reply({"ok": False, "error": "not_found"})
            given = call.params.get("hash")
            if given and given != current["hash"]:
                return Reply({"ok": False, "error": "hash_conflict"})
            stored = self.views[view_id] = {**view, "id": view_id, "hash": f"{n}.h"}
        return Reply({"ok": True, "view": stored})

    def _api_views_publish(self, call: Call) -> Reply:
        view, user = self._view_param(call), str(call.params.get("user_id") or "")
        if view is None or not user:
            return Reply({"ok": False, "error": "invalid_arguments"})
        n = self._next_id()
        stored = {**view, "id": f"V{n:08d}", "hash": f"{n}.h"}
        with self._lock:
            self.homes[user] = stored
        return Reply({"ok": True, "view": stored})

    def _api_users_info(self, call: Call) -> Reply:
        user_id = str(call.params.get("user"))
        # Anyone not described in ``users`` is a plain member of this workspace.
        user = self.users.get(user_id, {"id": user_id, "team_id": self.team_id, "is_restricted": False})
        return Reply({"ok": True, "user": user})

    def _api_usergroups_users_list(self, call: Call) -> Reply:
        members = self.usergroups.get(str(call.params.get("usergroup")))
        if members is None:
            return Reply({"ok": False, "error": "no_such_subteam"})
        return Reply({"ok": True, "users": list(members)})

    def _api_files_getUploadURLExternal(self, call: Call) -> Reply:
        file_id = f"F{self._next_id():08d}"
        return Reply({"ok": True, "upload_url": f"{self.url}/upload/{file_id}", "file_id": file_id})

    def _api_files_completeUploadExternal(self, call: Call) -> Reply:
        files = call.params.get("files") or []
        return Reply({"ok": True, "files": [{"id": f.get("id"), "title": f.get("title")} for f in files]})


class _Window:
    """Fixed one-minute windows: ``admit()`` is None when the call fits, else the Retry-After seconds."""

    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._start = clock()
        self._count = 0

    def admit(self) -> int | None:
        now = self._clock()
        if now - self._start >= 60:
            self._start, self._count = now - (now - self._start) % 60, 0
        if self._count < self.per_minute:
            self._count += 1
            return None
        return max(1, int(self._start + 60 - now + 0.999))


class _Handler(BaseHTTPRequestHandler):
    owner: FakeSlack
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes: with Nagle on, a keep-alive client's delayed ACK holds
    # the body back ~40 ms per call (the bot keeps its Web API connections alive).
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
        pass  # keep test output clean; every call is recorded instead

    def do_GET(self) -> None:
        # Some SDK methods (usergroups.users.list, users.info) are sent as GET with a query string.
        self.do_POST()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        headers = {k.lower(): v for k, v in self.headers.items()}
        path, _, query = self.path.partition("?")
        params = (
            _parse_params(headers.get("content-type", ""), body) if not path.startswith("/upload/") else {}
        )
        if query and not path.startswith("/upload/"):
            params = {**_parse_params("application/x-www-form-urlencoded", query.encode()), **params}
        call = Call(path=path, headers=headers, body=body, params=params, at=time.time())
        fake = self.owner
        if path.startswith("/upload/"):
            with fake._lock:
                fake.uploads[path.removeprefix("/upload/")] = body
            fake._record(call)
            self._reply(Reply({"ok": True}))
            return
        if path.startswith("/response/"):
            override = fake.overrides.get("response_url")
            reply = (override(call) if override else None) or Reply({"ok": True})
            fake._record(call)
            self._reply(reply, raw_ok=True)
            return
        if path.startswith("/api/"):
            reply = fake._answer_api(call)
            fake._record(call)
            self._reply(reply)
            return
        fake._record(call)
        self._reply(Reply({"ok": False, "error": "unknown_path"}, 404))

    def _reply(self, reply: Reply, *, raw_ok: bool = False) -> None:
        # Slack's response_url answers a bare "ok" with 200; the SDK only looks at the status there.
        payload = (
            b"ok"
            if raw_ok and reply.status == 200 and reply.body == {"ok": True}
            else json.dumps(reply.body).encode()
        )
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(payload)


def _parse_params(content_type: str, body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    if "json" in content_type:
        try:
            data = json.loads(body)
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {"_": data}
    fields = {k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()}
    out: dict[str, Any] = dict(fields)
    for key in _JSON_PARAMS:
        value = fields.get(key)
        if isinstance(value, str) and value[:1] in "[{":
            try:
                out[key] = json.loads(value)
            except ValueError:
                pass
    return out
