"""FakeSlack for tests: the shipped stand-in (`standins.fake_slack`), re-exported under its test name."""

from standins.fake_slack import Call, FakeSlack, Override, Reply

__all__ = ["Call", "FakeSlack", "Override", "Reply"]
