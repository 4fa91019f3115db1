"""What a Slack channel shows, rebuilt from the calls the bot made to the Slack stand-in (pure).

Input: the calls recorded during one step (``path``, ``params``, ``body`` each, in arrival order), the
stand-in's final message store (``ts -> params``, with edits merged in) and its uploads, plus the HTTP
ack the user's own request got. Output: `Event`s in the order a person in the channel would notice them:

- `Message`: something the bot posted — in the channel (``chat.postMessage``, a response_url reply with
  ``response_type: in_channel``) or only for one user (the ack, ``chat.postEphemeral``, an ephemeral
  response_url reply). A message posted in an earlier step and edited in this one (``chat.update``)
  appears again, ``edited=True``, with its final content;
- `SharedFile`: a file shared into a channel or a thread (``files.completeUploadExternal``), with its
  name, size and first lines.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

FILE_HEAD_LINES = 5


class RecordedCall(Protocol):
    """One request the Slack stand-in received (FakeSlack's ``Call`` has this shape)."""

    @property
    def path(self) -> str: ...

    @property
    def params(self) -> dict[str, Any]: ...

    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True)
class UserAction:
    """What a person did: typed a slash command, or clicked a button."""

    user_id: str
    text: str
    channel_id: str | None = None


@dataclass(frozen=True)
class Message:
    author_id: str
    text: str
    blocks: tuple[dict[str, Any], ...] = ()
    visibility: Literal["channel", "ephemeral"] = "channel"
    to_user: str | None = None  # for ephemeral messages: the only person who sees it
    channel_id: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    edited: bool = False  # posted in an earlier step, changed in this one


@dataclass(frozen=True)
class SharedFile:
    author_id: str
    name: str
    title: str
    size: int
    head: tuple[str, ...]  # the first lines
    total_lines: int
    channel_id: str | None = None
    thread_ts: str | None = None


Event = UserAction | Message | SharedFile


def ack_message(ack_body: str, *, bot_id: str, user_id: str, channel_id: str | None) -> Message | None:
    """The HTTP answer to a slash command, as Slack shows it (ephemeral unless ``in_channel``)."""
    if not ack_body.strip():
        return None
    # Bolt answers a text-only ack with the bare text, anything richer with JSON; Slack accepts both.
    data = _json(ack_body.encode())
    if not isinstance(data, Mapping):
        return Message(bot_id, ack_body, visibility="ephemeral", to_user=user_id, channel_id=channel_id)
    if not (data.get("text") or data.get("blocks")):
        return None
    return _reply_message(data, bot_id=bot_id, user_id=user_id, channel_id=channel_id)


def channel_events(
    calls: Sequence[RecordedCall],
    *,
    messages: Mapping[str, Mapping[str, Any]],
    uploads: Mapping[str, bytes],
    new_ts: Sequence[str],
    bot_id: str,
    responder_of: Mapping[str, str],
    show_updates: bool = False,
) -> list[Event]:
    """Events for the calls of one step.

    ``new_ts``: the ts of messages first posted during this step, oldest first (the stand-in assigns
    increasing ts, so the k-th ``chat.postMessage`` call is the k-th of them). ``responder_of`` maps a
    response_url key (``/response/<key>``) to the user that request came from. ``show_updates``: every
    ``chat.update`` is an event of its own, with the content it set (live progress, as it was seen).
    """
    events: list[Event] = []
    posted = iter(new_ts)
    new = set(new_ts)
    edited_seen: set[str] = set()
    file_names: dict[str, str] = {}
    pending_names: list[str] = []
    for call in calls:
        path = call.path
        method = path.removeprefix("/api/") if path.startswith("/api/") else None
        if method == "chat.postMessage":
            ts = next(posted, None)
            if ts is not None:
                shown = call.params if show_updates else messages.get(ts, call.params)
                events.append(_stored_message(ts, shown, bot_id, edited=False))
        elif method == "chat.update" and show_updates:
            ts = str(call.params.get("ts"))
            events.append(_stored_message(ts, {**messages.get(ts, {}), **call.params}, bot_id, edited=True))
        elif method == "chat.update":
            ts = str(call.params.get("ts"))
            if ts not in new and ts not in edited_seen and ts in messages:
                edited_seen.add(ts)
                events.append(_stored_message(ts, messages[ts], bot_id, edited=True))
        elif method == "chat.postEphemeral":
            events.append(
                Message(
                    bot_id,
                    str(call.params.get("text") or ""),
                    _blocks(call.params.get("blocks")),
                    visibility="ephemeral",
                    to_user=_opt(call.params.get("user")),
                    channel_id=_opt(call.params.get("channel")),
                    thread_ts=_opt(call.params.get("thread_ts")),
                )
            )
        elif method == "files.getUploadURLExternal":
            pending_names.append(str(call.params.get("filename") or "file"))
        elif path.startswith("/upload/"):
            file_names[path.removeprefix("/upload/")] = pending_names.pop(0) if pending_names else "file"
        elif method == "files.completeUploadExternal":
            events.extend(_shared_files(call.params, uploads, file_names, bot_id))
        elif path.startswith("/response/"):
            reply = _json(call.body)
            if reply is not None:
                user = responder_of.get(path.removeprefix("/response/"), "")
                events.append(_reply_message(reply, bot_id=bot_id, user_id=user, channel_id=None))
    return events


def _stored_message(ts: str, params: Mapping[str, Any], bot_id: str, *, edited: bool) -> Message:
    return Message(
        bot_id,
        str(params.get("text") or ""),
        _blocks(params.get("blocks")),
        channel_id=_opt(params.get("channel")),
        ts=ts,
        thread_ts=_opt(params.get("thread_ts")),
        edited=edited,
    )


def _reply_message(data: Mapping[str, Any], *, bot_id: str, user_id: str, channel_id: str | None) -> Message:
    in_channel = data.get("response_type") == "in_channel"
    return Message(
        bot_id,
        str(data.get("text") or ""),
        _blocks(data.get("blocks")),
        visibility="channel" if in_channel else "ephemeral",
        to_user=None if in_channel else user_id,
        channel_id=channel_id,
    )


def _shared_files(
    params: Mapping[str, Any], uploads: Mapping[str, bytes], names: Mapping[str, str], bot_id: str
) -> Iterable[SharedFile]:
    files = params.get("files")
    if isinstance(files, str):
        files = _json(files.encode())
    for entry in files if isinstance(files, list) else ():
        if not isinstance(entry, Mapping):
            continue
        file_id = str(entry.get("id"))
        content = uploads.get(file_id, b"")
        text = content.decode("utf-8", "replace")
        lines = text.splitlines()
        yield SharedFile(
            author_id=bot_id,
            name=names.get(file_id, file_id),
            title=str(entry.get("title") or ""),
            size=len(content),
            head=tuple(lines[:FILE_HEAD_LINES]),
            total_lines=len(lines),
            channel_id=_opt(params.get("channel_id")),
            thread_ts=_opt(params.get("thread_ts")),
        )


def _blocks(value: Any) -> tuple[dict[str, Any], ...]:
    if isinstance(value, str):
        value = _json(value.encode())
    if isinstance(value, list):
        return tuple(b for b in value if isinstance(b, dict))
    return ()


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return None


def _opt(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None
