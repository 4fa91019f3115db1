"""Data-channel failures a user can be told about: one sentence saying what happened, and the fix.

All are ``DataChannelError`` subclasses so the runner can catch the family; the class tells it (and the
audit log) which phase failed.
"""

from __future__ import annotations

from bot.errors import DataChannelError

MAX_PEER_TEXT = 500  # characters of agent/MGS-supplied text quoted in an error


def _bounded_text(text: str) -> str:
    """Text the peer chose, made safe to quote in one sentence: control characters become spaces and
    anything past ``MAX_PEER_TEXT`` characters is cut (it may be up to a whole 1 MiB frame)."""
    text = "".join(ch if ch.isprintable() else " " for ch in text[: MAX_PEER_TEXT + 1]).strip()
    return text if len(text) <= MAX_PEER_TEXT else text[: MAX_PEER_TEXT - 1] + "…"


class ChannelConnectError(DataChannelError):
    """The websocket to the session's stream URL could not be opened."""

    def __init__(self, url_host: str, detail: str) -> None:
        super().__init__(
            f"Could not open the Session Manager data channel to {url_host} ({detail}).",
            fix="Check that the bot can reach ssmmessages.<region>.amazonaws.com on port 443 "
            "(NAT, proxy or an ssmmessages VPC endpoint).",
        )


class TokenRejectedError(DataChannelError):
    """The service closed the data channel right after the session token was sent."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The Session Manager service refused the session token ({detail}).",
            fix="Session tokens are short-lived and single-use: start the command again, and check that the "
            "bot's clock is correct.",
        )


class AgentClosedError(DataChannelError):
    """``channel_closed`` carried an error text from the agent/MGS."""

    def __init__(self, text: str) -> None:
        # The text comes from the far side of the websocket: keep it one readable, bounded line.
        text = _bounded_text(text)
        self.agent_text = text
        super().__init__(
            f"The ECS Exec agent ended the session with an error: {text}",
            fix="Check that the task has ExecuteCommandAgent RUNNING and that the command exists in the container.",
        )


class ConnectionLostError(DataChannelError):
    """The websocket dropped and could not be resumed."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The Session Manager data channel was lost and could not be resumed ({detail}).",
            fix="Check the network path to ssmmessages and retry the command; the bot needs ssm:ResumeSession "
            "to survive short network drops.",
        )


class SessionExpiredError(DataChannelError):
    """ResumeSession said the session no longer exists."""

    def __init__(self, session_id: str, detail: str = "") -> None:
        self.detail = detail
        super().__init__(
            f"Session {session_id} ended while the data channel was disconnected"
            + (f" ({_bounded_text(detail)})." if detail else "."),
            fix="Run the command again; its output after the disconnection could not be recovered.",
        )


class DeadlineError(DataChannelError):
    """A phase of the session took longer than its configured deadline."""

    def __init__(self, phase: str, seconds: float) -> None:
        self.phase = phase
        super().__init__(
            f"The data channel gave up: {phase} took longer than {seconds:g} s, so the session was terminated.",
            fix="Check the task's ExecuteCommandAgent and the network path to ssmmessages, or raise the "
            "channel deadline if the command is legitimately silent for that long.",
        )


class KmsRequiredError(DataChannelError):
    """The agent asked for KMS encryption but the bot has no way to make a data key."""

    def __init__(self, key_id: str, reason: str) -> None:
        super().__init__(
            f"This ECS Exec session requires KMS encryption with key {key_id}, but {reason}.",
            fix="Give the bot a KMS client for the cluster's region and kms:GenerateDataKey on that key "
            "(cluster executeCommandConfiguration.kmsKeyId).",
        )


class KmsAccessError(DataChannelError):
    """kms:GenerateDataKey failed (usually AccessDenied)."""

    def __init__(self, key_id: str, detail: str) -> None:
        super().__init__(
            f"kms:GenerateDataKey on {key_id} failed for this encrypted ECS Exec session ({detail}).",
            fix="Allow kms:GenerateDataKey on that key for the bot's role (and check the key is enabled).",
        )


class EncryptionError(DataChannelError):
    """A payload of an encrypted session could not be decrypted or the challenge failed."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The encrypted data channel failed: {detail}.",
            fix="Check that the session target (ecs:<cluster>_<taskId>_<runtimeId>) is correct and retry.",
        )


class HandshakeError(DataChannelError):
    """The agent asked for something in the handshake that this client cannot do."""

    def __init__(self, detail: str) -> None:
        super().__init__(
            f"The ECS Exec handshake failed: {_bounded_text(detail)}.",
            fix="Use an interactive ECS Exec session (shell or command); port forwarding is not supported.",
        )


class SessionControlError(DataChannelError):
    """An ssm:ResumeSession / ssm:TerminateSession call failed in a way we can name."""

    def __init__(self, action: str, detail: str, *, fix: str) -> None:
        self.action = action
        super().__init__(f"ssm:{action} failed: {detail}.", fix=fix)
