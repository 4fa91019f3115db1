"""FakeSlack for tests: the shipped stand-in (`bot.sandbox.fake_slack`), re-exported under its test name."""

from bot.sandbox.fake_slack import Call, FakeSlack, Override, Reply

__all__ = ["Call", "FakeSlack", "Override", "Reply"]
