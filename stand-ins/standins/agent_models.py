"""The shapes a test, the demo or the sandbox ECS API hands to the local agent (pydantic at the edge)."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field, model_validator


def new_session_id() -> str:
    # Same prefix as real ECS Exec sessions, so code that looks at it behaves the same.
    return f"ecs-execute-command-{uuid.uuid4().hex[:17]}"


class Faults(BaseModel):
    """Deterministic misbehaviour of the AWS side, per session; everything is off by default.

    Random choices come from ``random.Random(seed)``, so a given spec misbehaves the same way on
    every run. "First transmission" faults never touch retransmissions: the protocol must recover.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    seed: int = 0
    reorder_rate: float = Field(0.0, ge=0, le=1)  # hold a message back and send it after the next one
    duplicate_rate: float = Field(0.0, ge=0, le=1)  # send the first transmission twice
    drop_rate: float = Field(0.0, ge=0, le=1)  # lose the first transmission
    drop_seqs: frozenset[int] = frozenset()  # lose the first transmission of exactly these seqs
    pause_after: int | None = Field(None, ge=0)  # pause_publication after N messages published...
    pause_seconds: float = Field(0.3, ge=0)  # ...then start_publication after this long
    close_after: int | None = Field(None, ge=0)  # drop the websocket once after N first transmissions
    no_channel_closed: bool = False  # at the end, never send channel_closed (socket stays open)
    # at the end, reset the TCP connection instead of sending channel_closed: all output was sent, and
    # the session is over (ResumeSession says so), but the client never hears that it ended
    reset_at_end: bool = False
    channel_closed_error: str = ""  # Output text of channel_closed (a failure as MGS reports it)
    ack_delay: float = Field(0.0, ge=0)  # acknowledge client input this many seconds late
    reject_token: int = Field(0, ge=0)  # refuse the first N connections as if the token were wrong
    pty_start_delay: float = Field(0.0, ge=0)  # input in this window is not acked (PTY not started)


class SessionSpec(BaseModel):
    """One ECS Exec session to serve: what runs, and how the AWS side behaves."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session_id: str = Field(default_factory=new_session_id, min_length=1, max_length=200)
    command: str = ""  # shlex-split and exec'd in a PTY, like the agent in a container
    # The task's directory, also its `/` for container paths (/var/log/x is <cwd>/var/log/x); default: the
    # agent's sandbox directory.
    cwd: str | None = None
    env: dict[str, str] = Field(default_factory=dict)  # added to the agent's own environment
    synthetic_output_bytes: int | None = Field(None, ge=0)  # fast path: no process, deterministic output
    # Seconds between synthetic 1 KiB chunks; 0.001 is how the agent paces a PTY that has more to say (it
    # sleeps 1 ms between reads), so each message reaches the client on its own. 0: as fast as acked.
    synthetic_interval: float = Field(0.0, ge=0, le=1)
    kms_key_id: str | None = None  # set: handshake with KMSEncryption, encrypted payloads
    target: str | None = None  # "ecs:<cluster>_<taskId>_<runtimeId>": the KMS encryption context
    handshake: bool = False  # handshake (SessionType only) even without KMS
    require_kms_challenge: bool = False  # agent config Kms.RequireKMSChallengeResponse
    close_ack_wait: float = Field(2.0, ge=0)  # how long the end of a session waits for acks (agent: 2 s)
    faults: Faults = Faults()

    @model_validator(mode="after")
    def _check(self) -> SessionSpec:
        if self.synthetic_output_bytes is None and not self.command.strip():
            raise ValueError("a session needs a command or synthetic_output_bytes")
        if self.kms_key_id and not self.target:
            raise ValueError("a KMS session needs its target (the encryption context)")
        return self


class RegisteredSession(BaseModel):
    """What ECS ExecuteCommand would return for the session (camelCase on the wire)."""

    session_id: str
    stream_url: str
    token: str
    target: str | None = None

    def wire(self) -> dict[str, str]:
        return {"sessionId": self.session_id, "streamUrl": self.stream_url, "tokenValue": self.token}
