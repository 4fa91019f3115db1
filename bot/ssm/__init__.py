"""The SSM Session Manager data channel (ECS Exec) without session-manager-plugin.

- ``frames``: binary message codec (pure); ``handshake``: JSON payloads (pure);
  ``outbox``: sequenced sends and the retransmission timer (pure); ``kms``: AES-GCM + data keys;
- ``channel``: the async client (``DataChannelSession``); ``control``: ResumeSession/TerminateSession;
- ``errors``: the ``DataChannelError`` subclasses users see.
"""

from __future__ import annotations

from bot.ssm.channel import ChannelConfig, ChannelResult, DataChannelSession, SessionParams
from bot.ssm.control import Boto3SessionControl, SessionControl
from bot.ssm.kms import Boto3DataKeyProvider, DataKeyProvider

__all__ = [
    "Boto3DataKeyProvider",
    "Boto3SessionControl",
    "ChannelConfig",
    "ChannelResult",
    "DataChannelSession",
    "DataKeyProvider",
    "SessionControl",
    "SessionParams",
]
