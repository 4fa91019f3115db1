"""The builder's payload handling (no network): private_metadata and selections are input, checked again;
a refusal becomes a short plain-text form error."""

from __future__ import annotations

from bot.errors import PolicyDenied
from handlers.builder import BuilderPlace, _command_field, _place, _state, form_error
from handlers.replies import refusal


def view(metadata: str, values: dict[str, object] | None = None) -> dict[str, object]:
    return {"private_metadata": metadata, "state": {"values": values or {}}}


def test_metadata_is_checked_not_trusted() -> None:
    assert _place(view('{"channel": "C0INCIDENT", "thread_ts": "1.2"}')) == BuilderPlace(channel="C0INCIDENT",
                                                                                        thread_ts="1.2")
    forged = _place(view('{"channel": "<!channel>", "thread_ts": "x; rm"}'))
    assert forged == BuilderPlace()
    assert _place(view("not json")) is None


def test_state_from_home_takes_the_picked_channel_and_a_new_service_resets_the_pattern() -> None:
    values = {
        "channel": {"ecs_exec_builder_channel": {"selected_conversation": "C0OPS"}},
        "service": {"ecs_exec_builder_service": {"selected_option": {"value": "web"}}},
        "pattern": {"ecs_exec_builder_pattern": {"selected_option": {"value": "2"}}},
    }
    home = BuilderPlace(home=True)
    state = _state(view("{}", values), home)
    assert (state.channel, state.service, state.pattern, state.from_home) == ("C0OPS", "web", "2", True)
    assert _state(view("{}", values), home, {"action_id": "ecs_exec_builder_service"}).pattern is None
    # From a channel, the channel is the one the builder was opened in, whatever the form says.
    assert _state(view("{}", values), BuilderPlace(channel="C0INCIDENT")).channel == "C0INCIDENT"
    bad = {**values, "channel": {"ecs_exec_builder_channel": {"selected_conversation": "U0NOTACHANNEL"}}}
    assert _state(view("{}", bad), home).channel is None


def test_the_command_field_is_found_whatever_its_suffix() -> None:
    assert _command_field({"command-3": {"command": {"value": "tail -n 5 x"}}}) == ("command-3", "tail -n 5 x")
    assert _command_field({}) == ("command", "")


def test_form_error_is_plain_and_short() -> None:
    text = form_error(refusal(PolicyDenied("`rm` & co are refused <here>.", fix="x" * 400)))
    assert text.startswith("⛔ `rm` & co are refused <here>.") and len(text) <= 300
