"""Redactor: each kind on its corpus, no false positives on ordinary log text, linear time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.errors import ConfigError
from bot.output.redact import BUILTIN_KINDS, Redactor
from bot.regex_shapes import check_pattern, literal_prefixes

from .redaction_corpus import AKIA, JWT, NEGATIVE, POSITIVE, XOXB

REDACTOR = Redactor()


@pytest.mark.parametrize(("kind", "text", "secret"), POSITIVE, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(POSITIVE)])
def test_positive(kind: str, text: str, secret: str) -> None:
    out = REDACTOR.redact(text)
    assert secret not in out, out
    assert f"[redacted:{kind}]" in out, out
    assert REDACTOR.redact(out) == out  # idempotent


@pytest.mark.parametrize("text", NEGATIVE)
def test_negative(text: str) -> None:
    assert REDACTOR.redact(text) == text


def test_every_kind_has_a_positive_case() -> None:
    covered = {kind for kind, _, _ in POSITIVE}
    assert set(BUILTIN_KINDS) <= covered, set(BUILTIN_KINDS) - covered
    assert len(BUILTIN_KINDS) >= 30


def test_keys_stay_visible_and_surroundings_are_untouched() -> None:
    text = f"env: AWS_ACCESS_KEY_ID={AKIA} DEBUG=1\npassword=hunter2 user=bob\n"
    assert REDACTOR.redact(text) == (
        "env: AWS_ACCESS_KEY_ID=[redacted:aws-access-key-id] DEBUG=1\npassword=[redacted:password] user=bob\n"
    )


def test_overlapping_findings_merge_into_the_most_specific_kind() -> None:
    assert REDACTOR.redact(f"token={XOXB}") == "token=[redacted:slack-bot-token]"
    assert REDACTOR.redact(f"password={JWT}") == "password=[redacted:jwt]"
    assert REDACTOR.redact(f"postgres://u:{AKIA}@db/x") == "postgres://u:[redacted:aws-access-key-id]@db/x"


def test_non_ascii_text_keeps_offsets() -> None:
    # "İ" lower-cases to two characters; findings must still land on the right offsets.
    text = f"İİİ naïve 日本 password=hunter2 {AKIA} ünïcode"
    assert REDACTOR.redact(text) == (
        "İİİ naïve 日本 password=[redacted:password] [redacted:aws-access-key-id] ünïcode"
    )


def test_policy_patterns() -> None:
    class Pattern:
        name = "internal-token"
        pattern = r"itk_[A-Za-z0-9]{32}"

    redactor = Redactor([Pattern(), ("employee-id", r"emp=(?P<secret>E[0-9]{6})")])
    out = redactor.redact("x itk_" + "a" * 32 + " emp=E123456 and itk_short")
    assert out == "x [redacted:internal-token] emp=[redacted:employee-id] and itk_short"
    assert {"internal-token", "employee-id"} <= redactor.kinds


@pytest.mark.parametrize(
    "pattern",
    [r"(a+)+b", r"(?:\w+\s?)*$", r"(a|aa)*c", r"(x)\1", r"(?=(a+)+)b", r"((ab)*)*"],
)
def test_dangerous_policy_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(ConfigError) as err:
        Redactor([("bad", pattern)])
    assert "bad" in err.value.user_text() and err.value.fix


@pytest.mark.parametrize(("name", "pattern"), [("Bad Name", "x+"), ("ok", "("), ("empty", "a*")])
def test_invalid_policy_patterns_are_refused(name: str, pattern: str) -> None:
    with pytest.raises(ConfigError):
        check_pattern(name, pattern)


def test_literal_prefixes_are_derived_from_patterns() -> None:
    import re

    assert set(literal_prefixes(re.compile(r"gh[pousr]_[A-Za-z0-9]{36}"))) == {"ghp_", "gho_", "ghu_", "ghs_", "ghr_"}
    assert literal_prefixes(re.compile(r"pass(?:word|wd|(?<!x)y)")) == ("pass",)
    assert literal_prefixes(re.compile(r"[a-z]+x")) == ()
    assert set(literal_prefixes(re.compile(r"AB(?:C|D)e"))) == {"abce", "abde"}


_FILLER = st.text(alphabet=st.sampled_from(list("abc XYZ019-_./:=\"'\n\t{}[],;")), max_size=60)


@settings(max_examples=300, deadline=None)
@given(before=_FILLER, after=_FILLER, case=st.sampled_from(POSITIVE))
def test_a_secret_survives_no_surroundings(before: str, after: str, case: tuple[str, str, str]) -> None:
    _, text, secret = case
    out = REDACTOR.redact(before + " " + text + "\n" + after)
    assert secret not in out


@settings(deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_never_crashes_and_is_stable(text: str) -> None:
    once = REDACTOR.redact(text)
    assert REDACTOR.redact(once) == once


# A regex that backtracks would need hours on these; the timeout turns that into a failure.
ADVERSARIAL = [
    "password=" * 200_000,
    "a" * 1_000_000 + "!",
    "AKIA" * 250_000,
    "-----BEGIN RSA PRIVATE KEY-----\n" * 30_000,
    ("A" * 64 + "\n") * 15_000 + "-----END RSA PRIVATE KEY-----",
    "-----END RSA PRIVATE KEY-----" * 30_000,
    "://" + ":" * 500_000 + "@",
    "://a:" + "b" * 500_000,
    "authorization: " + "x" * 1_000_000,
    "bearer " + "a" * 1_000_000,
    "eyJ" + "a" * 500_000 + "." + "b" * 500_000,
    '"password": "' + "\\\\" * 300_000,
    "token" * 200_000,
    "-a" * 500_000,
    "xoxb-" * 200_000,
    "sig=" + "%" * 1_000_000,
    "eyJa" * 250_000,  # a pattern that needed a dot after the run was quadratic here
    ("eyJ" + "a" * 10 + ".") * 100_000,
    "sk-" * 300_000,
    "AIza" * 250_000,
    'password: "' * 80_000,
    '"password":"\\' * 200_000,
    "--password " * 100_000,
    "authorization" * 80_000,
]


@pytest.mark.timeout(30)
@pytest.mark.parametrize("text", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_inputs_finish(text: str) -> None:
    REDACTOR.redact(text)


def test_a_placeholder_value_does_not_hide_what_follows() -> None:
    assert REDACTOR.redact('"password": "${X} password=leak"') == '"password": "${X} password=[redacted:password]"'
    assert REDACTOR.redact("password=null password=leak") == "password=null password=[redacted:password]"


def test_log_records_are_redacted(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    from bot.output.redact import RedactingLogFilter

    logger = logging.getLogger("test.redaction")
    logger.addFilter(RedactingLogFilter(REDACTOR))
    with caplog.at_level(logging.INFO, logger="test.redaction"):
        logger.info("exec failed: %s", f"AWS_ACCESS_KEY_ID={AKIA}")
        logger.info("nothing secret in %d lines", 3)
    assert [r.getMessage() for r in caplog.records] == [
        "exec failed: AWS_ACCESS_KEY_ID=[redacted:aws-access-key-id]", "nothing secret in 3 lines"]


def test_a_policy_pattern_with_a_possible_nested_set_loads_without_a_warning() -> None:
    """`re` warns (FutureWarning) about `[[`; a policy author cannot act on a warning, so none leaks."""
    import warnings

    from bot.policy import RedactPattern

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        redactor = Redactor([RedactPattern(name="odd", pattern="[[a-z]_]tok_[0-9]{4}")])
    assert "tok_1234" not in redactor.redact("id a_]tok_1234 end")  # `[[a-z]` is one set, then `_]`
