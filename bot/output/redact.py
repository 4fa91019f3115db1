"""Secret redaction: every text that leaves the process (message, file, log, audit) goes through here.

Findings are shown as ``[redacted:<kind>]``. Design constraints and how they are met:

* **Linear time.** Every built-in pattern is written so that the regex engine never backtracks more than
  a bounded amount per attempt (character classes that cannot overlap the next token, no nested
  unbounded repeats), and multi-line private keys are found procedurally. Policy-file patterns are
  checked for nested quantifiers and back-references before they are accepted
  (``bot.regex_shapes.check_pattern``).
* **Throughput.** Python's ``re`` searches fast (~1 GB/s) for a pattern that starts with a literal
  character and slowly for one that starts with a class or an alternation (it must try every
  position), and every pass over the text costs about 1 ms/MB. So each detector's pattern starts with
  a literal prefix (``ghp_``, ``xox``, ``password``, ``://``…); the prefixes, derived from the patterns,
  are grouped by first character into one trie-shaped regex per character, the text is scanned once
  per group, and a detector runs only at the positions where one of its prefixes occurs.
  Case-insensitive work uses a lower-cased copy of the text (same offsets) instead of
  ``re.IGNORECASE``, which would defeat the literal search.
* **Overlaps.** All detectors report spans on the original text; overlapping spans are merged and the
  most specific kind wins (``password=ghp_…`` is a ``github-token``). The pass is idempotent.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.regex_shapes import check_pattern, literal_prefixes


@dataclass(frozen=True, order=True)
class Finding:
    start: int
    end: int
    kind: str
    priority: int = field(default=0, compare=False)


class Detector(Protocol):
    # Read-only members, so frozen dataclasses are detectors too.
    @property
    def kind(self) -> str: ...

    @property
    def triggers(self) -> tuple[str, ...]:
        """Lower-case literals every match starts with; empty: the detector scans the whole text itself."""
        ...

    def find(self, text: str, lower: str) -> Iterable[Finding]: ...


class PositionalDetector(Detector, Protocol):
    def find_at(self, text: str, lower: str, pos: int) -> tuple[Finding | None, int]:
        """Try a match starting at ``pos``: (finding or None, end of the match or -1 if none)."""
        ...


# Priorities: a more specific finding wins when spans overlap.
_GENERIC, _CONTEXT, _TOKEN, _KEY_BLOCK = 10, 20, 30, 40

# Values that an assignment detector leaves alone: placeholders, not secrets.
_PLACEHOLDERS = frozenset({
    "", "null", "none", "nil", "true", "false", "undefined", "required", "optional", "string", "str",
    "redacted", "<redacted>", "(redacted)", "hidden", "<hidden>", "masked", "...", "…", "<secret>",
    "<password>", "<token>", "xxx", "xxxx",
})


@dataclass(frozen=True)
class RegexDetector:
    """One regex; ``group`` names the part to redact (default: the whole match)."""

    kind: str
    pattern: re.Pattern[str]
    on_lower: bool = False  # match against the lower-cased text (pattern written in lower case)
    group: str | int = 0
    priority: int = _TOKEN
    kind_of: Callable[[re.Match[str]], str] | None = None
    accept: Callable[[str], bool] | None = None
    # Require a token boundary before the match. Checked here rather than with a leading look-behind,
    # which would stop ``re`` from searching for the pattern's literal prefix.
    boundary: bool = False
    preceded_by: str = ""  # if set, the character before the match must be one of these
    triggers: tuple[str, ...] = ()

    def find(self, text: str, lower: str) -> Iterable[Finding]:
        for m in self.pattern.finditer(lower if self.on_lower else text):
            finding = self._finding(m, text)
            if finding is not None:
                yield finding

    def find_at(self, text: str, lower: str, pos: int) -> tuple[Finding | None, int]:
        m = self.pattern.match(lower if self.on_lower else text, pos)
        return (self._finding(m, text), m.end()) if m is not None else (None, -1)

    def _finding(self, m: re.Match[str], text: str) -> Finding | None:
        start, end = m.span(self.group)
        if start < 0 or start == end:
            return None
        if self.boundary and m.start() > 0 and _is_word_char(text[m.start() - 1]):
            return None
        if self.preceded_by and (m.start() == 0 or text[m.start() - 1] not in self.preceded_by):
            return None
        if self.accept is not None and not self.accept(text[start:end]):
            return None
        kind = self.kind_of(m) if self.kind_of is not None else self.kind
        return Finding(start, end, kind, self.priority)


def _rx(kind: str, pattern: str, *, lower: bool = False, group: str | int = 0, priority: int = _TOKEN,
        kind_of: Callable[[re.Match[str]], str] | None = None, accept: Callable[[str], bool] | None = None,
        boundary: bool = False, preceded_by: str = "") -> RegexDetector:
    compiled = re.compile(pattern)
    return RegexDetector(kind, compiled, lower, group, priority, kind_of, accept, boundary, preceded_by,
                         literal_prefixes(compiled))


def _is_word_char(ch: str) -> bool:
    return ch.isascii() and (ch.isalnum() or ch == "_")


_SEP = r"""\\?["']?[ \t]*(?:(?P<colon>:(?!=))|=>|:=|=)[ \t]*"""
# The value: a JSON-escaped string, a quoted string, or a bare value. After ``:`` (YAML, headers) a bare
# value runs to the end of the line, since YAML values may contain spaces; after ``=`` (env, logfmt,
# query strings) it stops at whitespace or ``&``.
_VALUE = (
    r"""(?:\\"(?P<edq>(?:[^"\\\n]|\\[^"\n])*)"""
    r"""|"(?P<dq>(?:[^"\\\n]|\\.)*)"""
    r"""|'(?P<sq>[^'\n]*)"""
    r"""|(?(colon)(?P<line>[^\s"'\[\]{},;&<>$%][^\n"',;}\]&<>]*)"""
    r"""|(?P<word>[^\s"'\[\]{},;&<>$%][^\s"',;&<>]*)))"""
)
_VALUE_GROUPS = ("edq", "dq", "sq", "line", "word")


def _not_placeholder(value: str) -> bool:
    v = value.strip().lower()
    return v not in _PLACEHOLDERS and not v.startswith("[redacted:") and v.strip("*") != "" \
        and not v.startswith(("${", "{{", "%(", "<%"))


@dataclass(frozen=True)
class AssignmentDetector:
    """``<key><sep><value>`` where the key ends with one of the keywords; redacts the value only."""

    kind: str
    pattern: re.Pattern[str]
    priority: int = _GENERIC
    triggers: tuple[str, ...] = ()

    def find(self, text: str, lower: str) -> Iterable[Finding]:
        for m in self.pattern.finditer(lower):
            finding = self._finding(m, text)
            if finding is not None:
                yield finding

    def find_at(self, text: str, lower: str, pos: int) -> tuple[Finding | None, int]:
        m = self.pattern.match(lower, pos)
        if m is None:
            return None, -1
        finding = self._finding(m, text)
        # A placeholder value is skipped, but assignments inside it are still looked at.
        return finding, (m.end() if finding is not None else _value_start(m))

    def _finding(self, m: re.Match[str], text: str) -> Finding | None:
        # The value groups close last, so ``lastgroup`` names the one that matched.
        if m.lastgroup not in _VALUE_GROUPS:  # pragma: no cover - guards a future pattern edit
            return None
        start, end = m.span(m.lastgroup)
        value = text[start:end].rstrip()
        if value and _not_placeholder(value):
            return Finding(start, start + len(value), self.kind, self.priority)
        return None


def _value_start(m: re.Match[str]) -> int:
    return m.start(m.lastgroup or 0)


def _assignment(kind: str, keyword: str) -> AssignmentDetector:
    # The keyword must end the key ("max_tokens" is not a token) and the pattern starts with it, so
    # ``re`` can search for its literal prefix.
    pattern = re.compile(rf"(?:{keyword})(?![a-z0-9]){_SEP}{_VALUE}")
    return AssignmentDetector(kind, pattern, triggers=literal_prefixes(pattern))


# ``--password hunter2`` in ``ps`` output or shell history. Matched from the dash just before the keyword
# (``--db-password`` too); a leading ``(?:[a-z]+-)*`` would be quadratic on ``-a-a-a…``.
_FLAG = re.compile(
    r"-(?P<kw>password|passwd|passphrase|secret|token|api-key|apikey)[ \t]+(?P<word>[^\s\"'-][^\s\"']*)"
)


@dataclass(frozen=True)
class FlagDetector:
    kind: str = "password"
    priority: int = _GENERIC
    triggers: tuple[str, ...] = field(default_factory=lambda: literal_prefixes(_FLAG))

    def find(self, text: str, lower: str) -> Iterable[Finding]:
        for m in _FLAG.finditer(lower):
            finding = self._finding(m, text)
            if finding is not None:
                yield finding

    def find_at(self, text: str, lower: str, pos: int) -> tuple[Finding | None, int]:
        m = _FLAG.match(lower, pos)
        if m is None:
            return None, -1
        finding = self._finding(m, text)
        return finding, (m.end() if finding is not None else m.start("word"))

    def _finding(self, m: re.Match[str], text: str) -> Finding | None:
        start, end = m.span("word")
        if not _not_placeholder(text[start:end]):
            return None
        kw = m.group("kw")
        kind = "api-key" if "api" in kw else "password" if "pass" in kw else kw
        return Finding(start, end, kind, self.priority)


# --- multi-line key blocks --------------------------------------------------------------------------

_KEY_MARKER = re.compile(
    r"-----(?P<edge>BEGIN|END) (?P<label>[A-Z0-9 ]{0,40}?)(?:PRIVATE|SECRET) KEY(?: BLOCK)?-----"
)
# What may appear inside a key block: base64, armour headers ("Proc-Type: 4,ENCRYPTED", "Comment: …"),
# blank lines and, in JSON, escaped newlines ("\\n").
_KEY_BODY = re.compile(r"[A-Za-z0-9+/=\s\\:,.()_@<>-]*")
# Walking back from an orphan END we accept only base64, whitespace and "\\n" escapes: the armour headers
# (which are not secret) sit right after BEGIN, so the walk stops there instead of eating earlier text.
_KEY_BODY_REVERSED = re.compile(r"[A-Za-z0-9+/=\s\\]*")
_KEY_WALK_LIMIT = 64 * 1024  # far more than any key (an 8192-bit RSA PEM is ~6.5 KB)


def _key_kind(label: str) -> str:
    if "OPENSSH" in label:
        return "openssh-private-key"
    if "PGP" in label:
        return "pgp-private-key"
    return "private-key"


@dataclass(frozen=True)
class KeyBlockDetector:
    """PEM / OpenSSH / PGP private keys, including a block cut by the head/tail gap: a BEGIN without END
    runs to the end of its body, an END without BEGIN back to the start of its body."""

    kind: str = "private-key"
    priority: int = _KEY_BLOCK
    triggers: tuple[str, ...] = ("-----begin", "-----end")

    def find(self, text: str, lower: str) -> Iterable[Finding]:
        markers = list(_KEY_MARKER.finditer(text))
        floor = 0  # nothing before this offset belongs to a later block
        i = 0
        while i < len(markers):
            m = markers[i]
            kind = _key_kind(m.group("label"))
            if m.group("edge") == "BEGIN":
                nxt = markers[i + 1] if i + 1 < len(markers) else None
                # Bounded by the next marker, so many BEGINs cannot make this quadratic.
                body = _KEY_BODY.match(text, m.end(), nxt.start() if nxt is not None else len(text))
                end = body.end() if body else m.end()
                if nxt is not None and nxt.group("edge") == "END" and end >= nxt.start():
                    end = nxt.end()  # the END closes this block (nothing but key body in between)
                    i += 2
                else:  # no END: the block is as much as looks like a key body
                    if nxt is not None:
                        end = min(end, nxt.start())
                    i += 1
                yield Finding(m.start(), end, kind, self.priority)
                floor = end
            else:  # an END whose BEGIN was cut off: walk back over the body
                lo = max(floor, m.start() - _KEY_WALK_LIMIT)
                walked = _KEY_BODY_REVERSED.match(text[lo : m.start()][::-1])
                start = m.start() - (walked.end() if walked else 0)
                yield Finding(start, m.end(), kind, self.priority)
                floor = m.end()
                i += 1


# --- credentials inside URLs -------------------------------------------------------------------------

_URL_CREDENTIALS = re.compile(r"://(?P<user>[^\s:/?#@\"'<>]*):(?P<secret>[^\s/?#\"'<>]+)@")
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]{0,30}$")
_DB_SCHEMES = frozenset({
    "postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongodb+srv", "redis", "rediss", "amqp",
    "amqps", "mssql", "sqlserver", "oracle", "clickhouse", "cockroachdb", "couchdb", "neo4j", "cassandra",
    "memcached", "elasticsearch", "jdbc:postgresql", "jdbc:mysql", "jdbc:sqlserver", "postgresql+psycopg2",
    "mysql+pymysql", "postgresql+asyncpg", "mysql+mysqldb",
})


@dataclass(frozen=True)
class UrlCredentialsDetector:
    """``scheme://user:pass@host`` → the password; a database scheme makes it a ``database-dsn``."""

    kind: str = "url-credentials"
    priority: int = _CONTEXT
    triggers: tuple[str, ...] = ("://",)

    def find(self, text: str, lower: str) -> Iterable[Finding]:
        for m in _URL_CREDENTIALS.finditer(text):
            yield self._finding(m, lower)

    def find_at(self, text: str, lower: str, pos: int) -> tuple[Finding | None, int]:
        m = _URL_CREDENTIALS.match(text, pos)
        return (self._finding(m, lower), m.end()) if m is not None else (None, -1)

    def _finding(self, m: re.Match[str], lower: str) -> Finding:
        start, end = m.span("secret")
        scheme = _SCHEME.search(lower, max(0, m.start() - 31), m.start())
        is_db = scheme is not None and (scheme.group() in _DB_SCHEMES
                                        or scheme.group().split("+")[0] in _DB_SCHEMES)
        return Finding(start, end, "database-dsn" if is_db else self.kind, self.priority)


# --- the catalogue -----------------------------------------------------------------------------------
# Every pattern starts with a literal (or one fixed first character), so ``re`` skips through text with
# its fast literal search; a leading character class or look-behind would make it try every position.

_E = r"(?![A-Za-z0-9_])"  # token end (token starts are checked with ``boundary=True``)
_SEP_SIMPLE = r"""\\?["']?[ \t]*(?:=>|:=|:|=)[ \t]*\\?["']?"""


def _looks_like_jwt(token: str) -> bool:
    parts = token.split(".")
    return len(parts) >= 3 and len(parts[0]) >= 7 and len(parts[1]) >= 4


def _slack_kind(m: re.Match[str]) -> str:
    return {"b": "slack-bot-token", "p": "slack-user-token"}.get(m.group("t"), "slack-token")


def _authorization_kind(m: re.Match[str]) -> str:
    scheme = (m.group("scheme") or "").strip()
    return {"bearer": "bearer-token", "basic": "basic-auth"}.get(scheme, "authorization-header")


@functools.cache
def builtin_detectors() -> tuple[Detector, ...]:
    """The built-in detectors, compiled on first use: ~50 regexes cost tens of ms, which a process that
    imports this module but never redacts must not pay."""
    return (
        # AWS: key ids by prefix; the secret key and session token by their context.
        _rx("aws-access-key-id",
            r"A(?:KIA|SIA|ROA|IDA|GPA|IPA|NPA|NVA|PKA|BIA|CCA|3T[A-Z0-9])[A-Z0-9]{16}(?![A-Za-z0-9])",
            boundary=True),
        _rx("aws-secret-access-key",
            r"secret(?:[_-]?(?:access[_-]?)?key|(?<=aws[_-]secret)|(?<=awssecret))(?![a-z0-9])"
            + _SEP_SIMPLE + r"(?P<s>[a-z0-9/+]{40})(?![a-z0-9/+=])",
            lower=True, group="s", priority=_CONTEXT),
        _rx("aws-session-token", r"se(?:ssion|curity)[_-]?token" + _SEP_SIMPLE + r"(?P<s>[a-z0-9/+=%]{16,})",
            lower=True, group="s", priority=_CONTEXT),
        # Slack
        _rx("slack-token", r"xox(?P<t>[abprseo])(?:\.xox[bp])?-[0-9A-Za-z-]{10,}", kind_of=_slack_kind),
        _rx("slack-app-token", r"xapp-[0-9]+-[0-9A-Za-z-]{10,}"),
        _rx("slack-webhook", r"hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]{8,}"),
        # Source forges and package registries
        _rx("github-token", rf"gh[pousr]_[A-Za-z0-9]{{36,251}}{_E}"),
        _rx("github-fine-grained-pat", r"github_pat_[A-Za-z0-9_]{22,255}"),
        _rx("gitlab-token", r"gl(?:pat|dt|rt|ptt|cbt|ft|soat|oas|imt|agent)-[A-Za-z0-9_-]{20,}", boundary=True),
        _rx("gitlab-token", r"GR1348941[A-Za-z0-9_-]{20,}"),
        _rx("npm-token", rf"npm_[A-Za-z0-9]{{36}}{_E}"),
        _rx("pypi-token", r"pypi-AgE[A-Za-z0-9_-]{50,}"),
        _rx("docker-hub-token", r"dckr_pat_[A-Za-z0-9_-]{20,}"),
        _rx("huggingface-token", rf"hf_[A-Za-z0-9]{{34,}}{_E}", boundary=True),
        # Cloud and SaaS APIs
        _rx("google-api-key", r"AIza[0-9A-Za-z_-]{35}(?![0-9A-Za-z_-])"),
        _rx("google-oauth-secret", r"GOCSPX-[A-Za-z0-9_-]{28}"),
        _rx("google-oauth-token", r"ya29\.[0-9A-Za-z_-]{20,}"),
        *(_rx("stripe-key", first + r"k_(?:live|test)_[0-9A-Za-z]{10,}", boundary=True) for first in "sr"),
        _rx("stripe-webhook-secret", r"whsec_[A-Za-z0-9+/=]{24,}"),
        # The first hex digit is spelled out so the literal prefixes are "sk0".."skf", not the common "sk".
        _rx("twilio-api-key", r"SK[0-9a-fA-F][0-9a-fA-F]{31}(?![A-Za-z0-9])", boundary=True),
        _rx("sendgrid-api-key", r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}"),
        _rx("anthropic-api-key", r"sk-ant-[a-z]{2,8}[0-9]{2}-[A-Za-z0-9_-]{32,}"),
        _rx("openai-api-key", r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{32,}(?![A-Za-z0-9_-])",
            priority=_TOKEN - 1, boundary=True),
        _rx("vault-token", r"hv[sbr]\.[A-Za-z0-9_-]{24,}", boundary=True),
        _rx("digitalocean-token", r"do[opr]_v1_[a-f0-9]{64}"),
        _rx("age-secret-key", r"AGE-SECRET-KEY-1[0-9A-Z]{58}"),
        _rx("shopify-token", r"shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}"),
        _rx("databricks-token", r"dapi[a-f0-9]{32}(?:-[0-9])?(?![A-Za-z0-9])", boundary=True),
        _rx("azure-storage-key", r"accountkey[ \t]*=[ \t]*(?P<s>[a-z0-9+/]{40,}={0,2})", lower=True, group="s",
            priority=_CONTEXT),
        _rx("azure-shared-access-key", r"sharedaccesskey[ \t]*=[ \t]*(?P<s>[a-z0-9+/]{20,}={0,2})", lower=True,
            group="s", priority=_CONTEXT),
        _rx("azure-sas-token", r"sig=(?P<s>[a-z0-9%/+=]{16,})", lower=True, group="s", priority=_CONTEXT,
            preceded_by="?&;"),
        # HTTP authentication, JWTs, Docker's config.json
        _rx("authorization-header",
            r"""authorization\\?["']?[ \t]*[:=][ \t]*\\?["']?"""
            r"""(?P<scheme>(?:bearer|basic|token|digest|negotiate|ntlm|aws4-hmac-sha256)[ \t]+)?"""
            r"""(?P<s>[^\s"'][^\n"']*)""",
            lower=True, group="s", priority=_CONTEXT, kind_of=_authorization_kind),
        _rx("bearer-token", r"bearer[ \t]+(?P<s>(?=[a-z0-9._~+/-]{8})[a-z._~+/-]*[0-9._~+/-][a-z0-9._~+/-]*=*)",
            lower=True, group="s", priority=_CONTEXT),
        # Matches any eyJ… run and checks the dots afterwards: a pattern that *requires* a dot after a long
        # run would fail only at the run's end, once per "eyJ" inside it (quadratic on "eyJaeyJa…").
        _rx("jwt", r"eyJ[A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]*)*", boundary=True, accept=_looks_like_jwt),
        # These two start after their leading punctuation so they share the "a"/"p" scans with other detectors.
        _rx("docker-config-auth", r'auth"[ \t]*:[ \t]*"(?P<s>[a-z0-9+/]{8,}={0,2})"', lower=True, group="s",
            priority=_CONTEXT, preceded_by='"'),
        _rx("database-dsn", r"pwd=(?P<s>[^;\s\"']+)", lower=True, group="s", priority=_CONTEXT, preceded_by=";"),
        KeyBlockDetector(),
        UrlCredentialsDetector(),
        # Generic assignments (env, JSON, YAML, logfmt, query strings) and command-line flags
        _assignment("password", r"pass(?:word|wd|phrase|(?<![a-z]pass))"),
        _assignment("secret", r"secret(?:[_-]?key(?:[_-]?base)?)?"),
        _assignment("token", r"token"),
        # Spelled out (not "[_-]?") so their literal prefixes are the whole keyword: "api" alone is everywhere.
        *(_assignment("api-key", word + r"(?:_key|-key|key)") for word in ("api", "access", "private", "auth")),
        FlagDetector(),
    )


# Every kind the built-in detectors can report (documentation and tests).
BUILTIN_KINDS: tuple[str, ...] = (
    "aws-access-key-id", "aws-secret-access-key", "aws-session-token", "slack-bot-token",
    "slack-user-token", "slack-token", "slack-app-token", "slack-webhook", "github-token",
    "github-fine-grained-pat", "gitlab-token", "npm-token", "pypi-token", "docker-hub-token",
    "huggingface-token", "google-api-key", "google-oauth-secret", "google-oauth-token", "stripe-key",
    "stripe-webhook-secret", "twilio-api-key", "sendgrid-api-key", "anthropic-api-key", "openai-api-key",
    "vault-token", "digitalocean-token", "age-secret-key", "shopify-token", "databricks-token",
    "azure-storage-key", "azure-shared-access-key", "azure-sas-token", "authorization-header",
    "bearer-token", "basic-auth", "jwt", "docker-config-auth", "database-dsn", "private-key",
    "openssh-private-key", "pgp-private-key", "url-credentials", "password", "secret", "token", "api-key",
)


class _PatternLike(Protocol):
    name: str
    pattern: str


ExtraPattern = tuple[str, str] | _PatternLike


# --- the redactor ------------------------------------------------------------------------------------

class Redactor:
    """``Redactor(extra_patterns).redact(text)``; extra patterns come from the policy file's ``redact``
    list (``(name, regex)`` pairs or objects with ``.name`` and ``.pattern``)."""

    def __init__(self, extra_patterns: Iterable[ExtraPattern] = (), *,
                 detectors: Sequence[Detector] | None = None) -> None:
        custom: list[Detector] = []
        for item in extra_patterns:
            name, pattern = item if isinstance(item, tuple) else (item.name, item.pattern)
            compiled = check_pattern(name, pattern)
            # A named group "secret" redacts just that part (keeps the key name visible).
            group: str | int = "secret" if "secret" in compiled.groupindex else 0
            custom.append(RegexDetector(name, compiled, group=group, priority=_TOKEN + 5,
                                        triggers=literal_prefixes(compiled)))
        builtin = builtin_detectors() if detectors is None else detectors
        self._detectors: tuple[Detector, ...] = (*builtin, *custom)
        self._always = [d for d in self._detectors if not d.triggers]
        self._at: dict[str, list[PositionalDetector]] = {}  # trigger -> detectors run at the hit
        self._whole: dict[str, list[Detector]] = {}  # trigger -> detectors run once on the text
        for d in self._detectors:
            for trigger in d.triggers:
                if hasattr(d, "find_at"):
                    self._at.setdefault(trigger, []).append(d)  # type: ignore[arg-type]
                else:
                    self._whole.setdefault(trigger, []).append(d)
        triggers = sorted(set(self._at) | set(self._whole))
        # A hit is the longest trigger at its position; the triggers it starts with fire too.
        self._implied = {t: [u for u in triggers if t.startswith(u)] for t in triggers}
        by_first: dict[str, list[str]] = {}
        for t in triggers:
            by_first.setdefault(t[0], []).append(t)
        self._scanners = [_trie_regex(group) for group in by_first.values()]

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(BUILTIN_KINDS) | {d.kind for d in self._detectors}

    def find(self, text: str) -> list[Finding]:
        """Merged, non-overlapping findings in order."""
        if not text:
            return []
        lower = text.lower()
        if len(lower) != len(text):
            # A few characters (e.g. "İ") lower-case to two; keep offsets aligned by lowering ASCII only.
            lower = text.translate(_ASCII_LOWER)
        found: list[Finding] = []
        whole: dict[int, Detector] = {id(d): d for d in self._always}
        # Per detector, where its last match ended: a hit inside it is not tried again, which keeps
        # runs like "xoxb-xoxb-xoxb-…" linear (one match, not one per trigger).
        covered: dict[int, int] = {}
        for scanner in self._scanners:
            for m in scanner.finditer(lower):
                pos = m.start()
                for trigger in self._implied[m.group()]:
                    for d in self._at.get(trigger, ()):
                        if pos < covered.get(id(d), -1):
                            continue
                        finding, end = d.find_at(text, lower, pos)
                        if end > pos:
                            covered[id(d)] = end
                        if finding is not None:
                            found.append(finding)
                    for w in self._whole.get(trigger, ()):
                        whole.setdefault(id(w), w)
        for detector in whole.values():
            found.extend(detector.find(text, lower))
        return _merge(found)

    def redact(self, text: str) -> str:
        findings = self.find(text)
        if not findings:
            return text
        out: list[str] = []
        pos = 0
        for f in findings:
            out.append(text[pos : f.start])
            out.append(f"[redacted:{f.kind}]")
            pos = f.end
        out.append(text[pos:])
        return "".join(out)


def _trie_regex(words: Iterable[str]) -> re.Pattern[str]:
    """One regex for words sharing their first character, shaped as a trie so that ``re`` searches for
    that literal character and then follows a single branch (longest word first)."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return re.compile(emit(trie))


class RedactingLogFilter(logging.Filter):
    """Redacts each log record's formatted message before any handler sees it, so command output or an
    error string quoted in a log line cannot carry a secret out (``logger.addFilter(...)`` or on a handler)."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def use(self, redactor: Redactor) -> None:
        """Switch to another redactor, e.g. the one with the policy file's patterns once it is loaded."""
        self._redactor = redactor

    def redact(self, text: str) -> str:
        return self._redactor.redact(text)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}


def _merge(found: list[Finding]) -> list[Finding]:
    if not found:
        return []
    found.sort(key=lambda f: (f.start, -f.end))
    merged: list[Finding] = []
    cur = found[0]
    for f in found[1:]:
        if f.start < cur.end:  # overlap: one span, the more specific kind
            best = f if f.priority > cur.priority else cur
            cur = Finding(cur.start, max(cur.end, f.end), best.kind, best.priority)
        else:
            merged.append(cur)
            cur = f
    merged.append(cur)
    return merged


@functools.cache
def builtin_redactor() -> Redactor:
    """The built-in kinds only: the safe default wherever no configured redactor was handed in."""
    return Redactor()
