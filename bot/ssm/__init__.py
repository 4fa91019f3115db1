"""The SSM Session Manager data channel (ECS Exec) without session-manager-plugin.

- ``frames``: binary message codec (pure); ``handshake``: JSON payloads (pure);
  ``inbox``: the receive reorder buffer (pure); ``outbox``: sequenced sends and the retransmission timer
  (pure); ``kms``: AES-GCM + data keys;
- ``connection``: the websocket (dial, receive fast path, batched acks, back-pressure, close);
  ``channel``: the session (``DataChannelSession``); ``control``: ResumeSession/TerminateSession;
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
