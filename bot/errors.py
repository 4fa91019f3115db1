"""One error hierarchy for everything a user can be told.

A ``BotError`` carries the one sentence the user sees and, where there is one, the fix. Anything
that is not a ``BotError`` is a bug: it is logged with context and shown as "internal error, reference
<id>". Each family has its own CLI exit status so scripts can tell them apart.
"""

from __future__ import annotations


class BotError(Exception):
    """A failure we can explain: ``message`` says what happened, ``fix`` what to do about it."""

    kind = "error"
    exit_status = 70  # EX_SOFTWARE-ish default; families override

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def user_text(self) -> str:
        """The one line shown to the user (Slack, CLI stderr, audit)."""
        return f"{self.message} {self.fix}" if self.fix else self.message


class ConfigError(BotError):
    """Settings, catalogue or policy file is invalid; raised at start-up."""

    kind = "config"
    exit_status = 78  # EX_CONFIG


class UsageError(BotError):
    """The command text or CLI arguments could not be parsed."""

    kind = "usage"
    exit_status = 64  # EX_USAGE


class PolicyDenied(BotError):
    """Deny-by-default policy refused the request."""

    kind = "denied"
    exit_status = 77  # EX_NOPERM


class TargetError(BotError):
    """The service/task/container cannot be used for ECS Exec (unknown, not running, exec disabled, IAM...)."""

    kind = "target"
    exit_status = 69  # EX_UNAVAILABLE


class AwsError(BotError):
    """An AWS call failed in a way we can name (AccessDenied, throttling after retries, ...)."""

    kind = "aws"
    exit_status = 69


class AwsCredentialsError(AwsError):
    """No usable AWS credentials (none found, expired, revoked, SSO login lapsed): the operator must log in."""

    kind = "credentials"
    exit_status = 77  # EX_NOPERM: nothing is wrong with the request, the caller is not authenticated


class DataChannelError(BotError):
    """The SSM data channel failed: protocol error, closed with an error, connection lost, deadline passed."""

    kind = "channel"
    exit_status = 75  # EX_TEMPFAIL


class ExecTimeout(DataChannelError):
    """The command ran longer than its timeout and was interrupted."""

    kind = "timeout"
    exit_status = 124  # like coreutils timeout(1)


class SlackError(BotError):
    """A Slack Web API failure we can explain (not_in_channel, channel_not_found, ...)."""

    kind = "slack"
    exit_status = 69


class StoreError(BotError):
    """The approvals/audit store is unavailable or inconsistent."""

    kind = "store"
    exit_status = 75
