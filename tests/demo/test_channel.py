"""Channel events rebuilt from what the Slack stand-in recorded (pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from standins.demo.channel import Message, SharedFile, ack_message, channel_events

BOT = "U0BOT"


@dataclass(frozen=True)
class Call:
    path: str
    params: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""


def _api(method: str, **params: Any) -> Call:
    return Call(f"/api/{method}", params)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def test_a_message_posted_then_updated_in_one_step_appears_once_with_its_final_content() -> None:
    calls = [
        _api("chat.postMessage", channel="C1", text="running", blocks=[_section("running")]),
        _api("chat.update", channel="C1", ts="1.000002", text="done", blocks=[_section("done")]),
    ]
    messages = {"1.000001": {"channel": "C1", "text": "old"},
                "1.000002": {"channel": "C1", "text": "done", "blocks": [_section("done")]}}
    events = channel_events(calls, messages=messages, uploads={}, new_ts=["1.000002"], bot_id=BOT,
                            responder_of={})
    assert events == [Message(BOT, "done", (_section("done"),), channel_id="C1", ts="1.000002")]


def test_an_older_message_edited_in_this_step_is_shown_once_as_edited() -> None:
    calls = [_api("chat.update", channel="C1", ts="1.000001", text="approved"),
             _api("chat.update", channel="C1", ts="1.000001", text="finished")]
    messages = {"1.000001": {"channel": "C1", "text": "finished"}}
    events = channel_events(calls, messages=messages, uploads={}, new_ts=[], bot_id=BOT, responder_of={})
    assert events == [Message(BOT, "finished", channel_id="C1", ts="1.000001", edited=True)]


def test_response_url_replies_are_ephemeral_to_their_requester_unless_in_channel() -> None:
    calls = [
        Call("/response/cmd1", body=json.dumps({"text": "refused", "response_type": "ephemeral"}).encode()),
        Call("/response/cmd1", body=json.dumps({"text": "for all", "response_type": "in_channel"}).encode()),
        Call("/response/cmd1", body=b"not json"),
    ]
    events = channel_events(calls, messages={}, uploads={}, new_ts=[], bot_id=BOT,
                            responder_of={"cmd1": "U0ALICE"})
    assert events == [
        Message(BOT, "refused", visibility="ephemeral", to_user="U0ALICE"),
        Message(BOT, "for all", visibility="channel"),
    ]


def test_post_ephemeral_goes_to_its_user() -> None:
    events = channel_events([_api("chat.postEphemeral", channel="C1", user="U0BOB", text="psst")],
                            messages={}, uploads={}, new_ts=[], bot_id=BOT, responder_of={})
    assert events == [Message(BOT, "psst", visibility="ephemeral", to_user="U0BOB", channel_id="C1")]


def test_a_file_upload_becomes_one_shared_file_with_name_size_and_head() -> None:
    content = "".join(f"line {i}\n" for i in range(1, 9)).encode()
    calls = [
        _api("files.getUploadURLExternal", filename="web-1.txt", length=str(len(content))),
        Call("/upload/F0001", body=content),
        _api("files.completeUploadExternal", channel_id="C1", thread_ts="1.000002",
             files=[{"id": "F0001", "title": "Full output (redacted)"}]),
    ]
    events = channel_events(calls, messages={}, uploads={"F0001": content}, new_ts=[], bot_id=BOT,
                            responder_of={})
    assert events == [
        SharedFile(BOT, "web-1.txt", "Full output (redacted)", len(content),
                   ("line 1", "line 2", "line 3", "line 4", "line 5"), 8, channel_id="C1", thread_ts="1.000002")
    ]


def test_files_given_as_a_json_string_are_understood() -> None:
    calls = [_api("files.completeUploadExternal", channel_id="C1", files=json.dumps([{"id": "F2", "title": "t"}]))]
    (event,) = channel_events(calls, messages={}, uploads={"F2": b"x"}, new_ts=[], bot_id=BOT, responder_of={})
    assert isinstance(event, SharedFile)
    assert (event.name, event.size, event.head) == ("F2", 1, ("x",))


def test_unrelated_calls_are_ignored() -> None:
    calls = [_api("auth.test"), _api("usergroups.users.list", usergroup="S1"), Call("/elsewhere")]
    assert channel_events(calls, messages={}, uploads={}, new_ts=[], bot_id=BOT, responder_of={}) == []


def test_ack_bodies_as_bolt_sends_them() -> None:
    # Bolt answers a text-only ack with the bare text, anything richer with JSON.
    assert ack_message("⏳ Running…", bot_id=BOT, user_id="U0ALICE", channel_id="C1") == Message(
        BOT, "⏳ Running…", visibility="ephemeral", to_user="U0ALICE", channel_id="C1"
    )
    blocks = [_section("b")]
    assert ack_message(json.dumps({"text": "t", "blocks": blocks}), bot_id=BOT, user_id="U0ALICE",
                       channel_id="C1") == Message(BOT, "t", tuple(blocks), visibility="ephemeral",
                                                   to_user="U0ALICE", channel_id="C1")
    assert ack_message(json.dumps({"text": "hi all", "response_type": "in_channel"}), bot_id=BOT,
                       user_id="U0ALICE", channel_id="C1").visibility == "channel"  # type: ignore[union-attr]
    assert ack_message("", bot_id=BOT, user_id="U0ALICE", channel_id="C1") is None
    assert ack_message("42", bot_id=BOT, user_id="U0ALICE", channel_id="C1") == Message(
        BOT, "42", visibility="ephemeral", to_user="U0ALICE", channel_id="C1"
    )
