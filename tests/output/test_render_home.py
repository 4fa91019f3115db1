"""App Home and the command builder as Block Kit (pure): the same buttons as the approval card, links to
messages, Slack's view limits, and the builder's dispatching fields."""

from __future__ import annotations

import json

import pytest

from bot.output.render import (
    VIEW_BLOCKS,
    ApprovalView,
    BuilderView,
    HomeView,
    RecentRunView,
    message_link,
    render_approval,
    render_builder,
    render_home,
)


def approval(n: int = 1) -> ApprovalView:
    return ApprovalView(request_id=f"req{n}", requester="U0ALICE", service="web", environment="prod",
                        command="uname -s", expires_at=1_700_000_900, approver_users=("U0BOB",),
                        button_value=f"req{n}|hash{n}")


def buttons(blocks: list[dict]) -> list[dict]:  # type: ignore[type-arg]
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"]]


def test_home_carries_the_cards_own_buttons_and_a_link() -> None:
    link = message_link("C0INCIDENT", "1700000000.000100")
    assert link == "https://slack.com/archives/C0INCIDENT/p1700000000000100"
    view = render_home(HomeView(approvals=((approval(), link),)))
    assert view["type"] == "home"
    card = [b for b in buttons(render_approval(approval()).blocks) if b["action_id"] != "ecs_exec_cancel"]
    home = [b for b in buttons(view["blocks"]) if b["action_id"] != "ecs_exec_home_build"]
    assert home == card
    assert link in json.dumps(view)


def test_home_stays_within_the_view_limits() -> None:
    many = tuple((approval(n), None) for n in range(30))
    recent = tuple(RecentRunView("finished", "web", "prod", "echo " + "x" * 500, 1_700_000_000) for _ in range(10))
    allowed = tuple(f"rule{n}: services web: `echo **`" for n in range(400))
    view = render_home(HomeView(approvals=many, more_approvals=5, recent=recent, allowed=allowed))
    assert len(view["blocks"]) <= VIEW_BLOCKS
    text = json.dumps(view)
    assert "and 27 more waiting" in text and "/ecs-exec list" in text


def test_home_escapes_what_it_did_not_write() -> None:
    recent = (RecentRunView("refused", "web", "prod", "echo <!channel>", 1_700_000_000),)
    view = render_home(HomeView(recent=recent, notice="⛔ <!here> no"))
    text = json.dumps(view)
    assert "<!channel>" not in text and "<!here>" not in text
    assert "Nothing is waiting for you" in text and "No policy rule includes you" in text


@pytest.mark.parametrize(("channel", "ts"), [(None, "1.2"), ("C0X", None), ("<evil>", "1.2"), ("C0X", "1.2x")])
def test_no_link_for_malformed_places(channel: str | None, ts: str | None) -> None:
    assert message_link(channel, ts) is None


def builder(**fields: object) -> BuilderView:
    base: dict[str, object] = dict(private_metadata="{}", channel_picker=False, channel="C0INCIDENT",
                                   services=(("api", "api (prod)"), ("web", "web (prod)")))
    return BuilderView(**{**base, **fields})  # type: ignore[arg-type]


def test_builder_steps_dispatch_and_the_command_block_follows_its_prefill() -> None:
    first = render_builder(builder())
    assert first["callback_id"] == "ecs_exec_builder" and first["private_metadata"] == "{}"
    ids = [b.get("block_id") for b in first["blocks"]]
    assert ids == [None, "service", "command", "reason"]  # where it runs (context), then the fields
    [service] = [b for b in first["blocks"] if b.get("block_id") == "service"]
    assert service["dispatch_action"] is True and "initial_option" not in service["element"]
    later = render_builder(builder(service="web", patterns=(("0", "tail -n *"), ("1", "id")), pattern="0",
                                   prefill="tail -n "))
    by_id = {b.get("block_id"): b for b in later["blocks"]}
    assert by_id["service"]["element"]["initial_option"]["value"] == "web"
    assert by_id["pattern"]["optional"] is True and by_id["pattern"]["element"]["initial_option"]["value"] == "0"
    assert by_id["command-0"]["element"]["initial_value"] == "tail -n "
    home = render_builder(builder(channel_picker=True, channel=None))
    [picker] = [b for b in home["blocks"] if b.get("block_id") == "channel"]
    assert picker["element"]["type"] == "conversations_select" and picker["dispatch_action"] is True


def test_builder_refuses_oversized_metadata() -> None:
    with pytest.raises(ValueError, match="private_metadata"):
        render_builder(builder(private_metadata="x" * 3001))


def test_builder_says_why_when_there_is_nothing_to_offer() -> None:
    view = render_builder(builder(services=(), note="No policy rule lets you run commands from this channel."))
    assert "No policy rule" in json.dumps(view)
    assert not [b for b in view["blocks"] if b.get("block_id") == "service"]
