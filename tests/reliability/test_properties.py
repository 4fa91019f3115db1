"""Whatever the input, only typed errors escape the pure parts of the request path.

These complement the owners' properties (random bytes to the frame decoder, random text to the command
parser, random commands under fixed policies, random text to the redactor) by reaching further in:
*mutations of valid frames* and the payload parsers behind them, *random policies* (rules, globs and
regexes as a policy file could hold them), *random redaction patterns*, and the whole pure slash-command
chain (parse → evaluate → summary) on hostile text. A typed error is a `bot.errors.BotError` subclass;
anything else (IndexError, re.error, ValidationError, RecursionError...) would be a user-visible
"internal error".
"""

from __future__ import annotations

import json

from hypothesis import HealthCheck, assume, event, given, settings
from hypothesis import strategies as st

from bot.commands import ExecRequest, parse_command_text
from bot.errors import BotError, ConfigError, DataChannelError
from bot.output.redact import Redactor
from bot.policy import allowed_summary, evaluate, parse_policy
from bot.ssm import handshake as hs
from bot.ssm.frames import FrameError, MessageType, PayloadType, decode_message, encode_message, parse_ack
from tests.output.redaction_corpus import POSITIVE
from tests.policy.rulesets import PERMISSIVE

PROPS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- frames: mutations of valid frames reach the payload checks that random bytes never get past -------

MESSAGE_TYPES = [MessageType.OUTPUT_STREAM_DATA, MessageType.ACKNOWLEDGE, MessageType.CHANNEL_CLOSED,
                 MessageType.INPUT_STREAM_DATA, MessageType.PAUSE_PUBLICATION, MessageType.START_PUBLICATION,
                 "agent_session_state", "x" * 32]
JSON_ISH = st.one_of(
    st.binary(max_size=200),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
            st.sampled_from(["AcknowledgedMessageType", "AcknowledgedMessageId", "AcknowledgedMessageSequenceNumber",
                             "IsSequentialMessage", "Output", "MessageType", "SessionId", "RequestedClientActions",
                             "ActionType", "ActionParameters", "Challenge", "AgentVersion", "x"]), inner, max_size=6),
        max_leaves=12,
    ).map(lambda v: json.dumps(v).encode()),
)


@st.composite
def mutated_frames(draw: st.DrawFn) -> bytes:
    frame = bytearray(encode_message(
        draw(st.sampled_from(MESSAGE_TYPES)), draw(JSON_ISH),
        sequence_number=draw(st.integers(0, 2**40)), payload_type=draw(st.sampled_from(list(PayloadType))),
    ))
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["flip", "truncate", "extend", "set"]))
        if kind == "flip" and frame:
            i = draw(st.integers(0, len(frame) - 1))
            frame[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del frame[draw(st.integers(0, len(frame))):]
        elif kind == "extend":
            frame += draw(st.binary(max_size=40))
        elif kind == "set" and len(frame) >= 4:
            i = draw(st.integers(0, len(frame) - 4))
            frame[i:i + 4] = draw(st.sampled_from([b"\xff\xff\xff\xff", b"\x00\x00\x00\x00", b"\x7f\xff\xff\xff"]))
    return bytes(frame)


@PROPS
@given(mutated_frames(), st.booleans())
def test_a_mutated_frame_and_its_payload_raise_only_frame_errors(frame: bytes, verify: bool) -> None:
    try:
        message = decode_message(frame, verify_digest=verify)
    except FrameError:
        return
    for parse in (parse_ack, hs.parse_channel_closed, hs.parse_handshake_request, hs.parse_handshake_complete,
                  hs.parse_challenge):
        try:
            parse(message.payload)
        except DataChannelError:
            pass


# -- policies: random rule sets, as a policy file could hold them --------------------------------------

WORD = st.text(alphabet=st.sampled_from("ab/.-_*?[]!{},^$\\ ~'\"|;&<>()0123456789"), min_size=1, max_size=12)
WILD_PATTERN = st.one_of(
    st.fixed_dictionaries({"argv": st.lists(WORD | st.sampled_from(["**", "*", "cat", "/var/log/*"]), max_size=5)}),
    st.fixed_dictionaries({"regex": st.text(alphabet=st.sampled_from("^$.*+?()[]{}|\\ab0-9 /d"), max_size=20)}),
    st.fixed_dictionaries({"argv": WORD, "regex": WORD}),  # both: must be a ConfigError, not a crash
)
SAFE_WORD = st.text(alphabet=st.sampled_from("ab/.-_*?~0123456789é"), min_size=1, max_size=10)
VALID_PATTERN = st.one_of(
    st.builds(lambda program, rest: {"argv": [program, *rest]},
              st.sampled_from(["cat", "tail", "grep", "ls", "echo", "ps"]),
              st.lists(SAFE_WORD | st.sampled_from(["**", "*", "-n", "/var/log/nginx/*", "[0-9]*"]), max_size=4)),
    st.builds(lambda parts: {"regex": "^" + "".join(parts) + "$"},
              st.lists(st.sampled_from(["cat", "tail", " ", "-n ", "/var/log/", "[a-z]+", "[0-9]{1,3}", "(a|b)",
                                        ".*", "\\.log", "x?"]), min_size=1, max_size=6)),
)
PATTERN = st.one_of(VALID_PATTERN, VALID_PATTERN, VALID_PATTERN, WILD_PATTERN)
WILD_RULE = st.fixed_dictionaries(
    {"name": st.text(alphabet=st.sampled_from("abc-_.9 é"), min_size=0, max_size=10),
     "commands": st.lists(PATTERN, max_size=4)},
    optional={
        "users": st.lists(st.sampled_from(["U0ALICE", "W0BOB", "alice", "", "U0"]), max_size=3),
        "groups": st.lists(st.sampled_from(["S0ONCALL", "G0X", "oncall"]), max_size=2),
        "channels": st.lists(st.sampled_from(["C0INCIDENT", "D0DM", "#general"]), max_size=2),
        "services": st.lists(st.sampled_from(["web", "*", "api", "Web!", ""]), max_size=2),
        "environments": st.lists(st.sampled_from(["prod", "*", "bad name"]), max_size=2),
        "allow_shell_syntax": st.booleans(),
        "timeout": st.one_of(st.integers(-5, 100_000), st.text(max_size=3), st.none()),
        "approval": st.fixed_dictionaries({}, optional={
            "required": st.booleans(), "min_approvals": st.integers(-1, 5), "ttl": st.integers(-1, 10_000),
            "approvers": st.fixed_dictionaries({}, optional={
                "users": st.lists(st.sampled_from(["U0BOB", "bob"]), max_size=2),
                "groups": st.lists(st.sampled_from(["S0SRE", "x"]), max_size=2)}),
        }),
        "extra_key": st.integers(),
    },
)
# Mostly-valid rules, so the matcher (not only the loader) meets random globs and regexes.
VALID_RULE = st.fixed_dictionaries(
    {"name": st.sampled_from(["oncall", "logs", "r.1", "a_b"]),
     "users": st.lists(st.sampled_from(["U0ALICE", "W0BOB"]), min_size=1, max_size=2),
     "services": st.lists(st.sampled_from(["web", "*", "api"]), min_size=1, max_size=2),
     "commands": st.lists(VALID_PATTERN, min_size=1, max_size=4)},
    optional={
        "groups": st.lists(st.just("S0ONCALL"), max_size=1),
        "channels": st.lists(st.just("C0INCIDENT"), max_size=1),
        "timeout": st.integers(1, 600),
        "approval": st.fixed_dictionaries({"approvers": st.fixed_dictionaries({"users": st.just(["U0BOB"])})}),
    },
)
RULE = st.one_of(VALID_RULE, VALID_RULE, WILD_RULE)
COMMANDS = st.one_of(
    st.text(max_size=80),
    st.lists(st.sampled_from(["cat", "/var/log/nginx/a.log", "|", ";", "&&", "$(id)", "`id`", "'", '"', ">",
                              "**", "*", "\n", "\\", "~", "-n", "10", "grep", "é"]), max_size=12).map(" ".join),
)


@PROPS
@given(st.one_of(
    st.fixed_dictionaries({"rules": st.lists(RULE, min_size=1, max_size=3, unique_by=lambda r: str(r.get("name")))}),
    st.dictionaries(st.sampled_from(["rules", "redact", "other"]), st.lists(RULE, max_size=3) | st.integers(),
                    max_size=2),
), st.lists(COMMANDS, min_size=1, max_size=4))
def test_any_policy_loads_or_is_a_config_error_and_then_decides_any_command(data: dict, commands: list[str]) -> None:
    try:
        policy = parse_policy(data)
    except ConfigError as exc:
        assert exc.message and exc.fix
        event("policy refused")
        return
    event(f"policy loaded with {len(policy.rules)} rule(s)")
    for command in commands:
        for user, groups in (("U0ALICE", ["S0ONCALL"]), ("U0MALLORY", [])):
            decision = evaluate(policy, user_id=user, user_groups=groups, channel_id="C0INCIDENT",
                                service_alias="web", environment="prod", command=command)
            assert decision.allowed + decision.needs_approval <= 1
            if not decision.allowed and not decision.needs_approval:
                assert isinstance(decision.to_error(), BotError) and decision.reason
    allowed_summary(policy, "U0ALICE", frozenset({"S0ONCALL"}), "C0INCIDENT")


# -- redaction: random user patterns never break the redactor -----------------------------------------

REGEX_PIECES = st.lists(st.sampled_from(
    ["a", "b", "[a-z]", "[^x]", ".", "\\d", "\\w", "+", "*", "?", "{2}", "{1,3}", "(", ")", "(?:", "(?P<secret>",
     "|", "^", "$", "\\b", "\\1", "(?=a)", "(?<=b)", "[", "]", "\\", "itk_", "-", "é"]), max_size=10).map("".join)


@PROPS
@given(st.lists(st.tuples(st.text(alphabet=st.sampled_from("ab-_1Z é"), max_size=8), REGEX_PIECES), max_size=3),
       st.text(max_size=200), st.sampled_from(POSITIVE))
def test_any_redaction_pattern_is_accepted_or_a_config_error_and_secrets_still_go(
    patterns: list[tuple[str, str]], noise: str, case: tuple[str, str, str]
) -> None:
    try:
        redactor = Redactor(patterns)
    except ConfigError as exc:
        assert exc.message and exc.fix
        return
    kind, text, secret = case
    out = redactor.redact(f"{noise}\n{text}\n{noise}")
    # A user pattern may redact more (even across the secret), never less.
    assert secret not in out or secret in noise


# -- the slash command's pure chain -----------------------------------------------------------------

POLICY = parse_policy(PERMISSIVE)
SLASH = st.one_of(
    st.text(max_size=120),
    st.lists(st.sampled_from(["web", "api", "--timeout", "10", "-t", "--task", "abc", "--all-tasks", "--reason",
                              "'x y'", "--container", "nginx", "&amp;", "&lt;", "&gt;", "&#59;", "cat",
                              "/var/log/nginx/a.log", "|", ";", "$(id)", "\u202e", "\x00", "\n", "help", "list",
                              "doctor", "--", "-", "'", '"']), max_size=14).map(" ".join),
)


@PROPS
@given(SLASH)
def test_slash_text_through_parse_and_policy_only_ever_raises_bot_errors(text: str) -> None:
    try:
        request = parse_command_text(text)
    except BotError:
        return
    if isinstance(request, ExecRequest):
        assume(request.service)
        decision = evaluate(POLICY, user_id="U0ALICE", user_groups=["S0ONCALL"], channel_id="C0INCIDENT",
                            service_alias=request.service, environment="prod", command=request.command,
                            requested_timeout=request.timeout)
        assert decision.allowed + decision.needs_approval <= 1
