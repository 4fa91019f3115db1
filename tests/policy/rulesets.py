"""Policies shared by the policy tests (importable: ``from tests.policy.rulesets import ...``)."""

from __future__ import annotations

from typing import Any

from bot.policy import PolicyConfig, parse_policy

ALICE = "U0ALICE"  # in S0ONCALL
BOB = "U0BOB"  # approver, in S0SRE
MALLORY = "U0MALLORY"  # in no rule
ONCALL = "S0ONCALL"
SRE = "S0SRE"
INCIDENT = "C0INCIDENT"
RANDOM = "C0RANDOM"

# Permissive-*looking*: lots of globs, `**`, "any program on the nginx logs", a regex or two. The
# hostile corpus must still be refused under it.
PERMISSIVE: dict[str, Any] = {
    "rules": [
        {
            "name": "oncall-logs",
            "groups": [ONCALL],
            "services": ["*"],
            "commands": [
                {"argv": ["cat", "/var/log/nginx/*"]},
                {"argv": ["tail", "-n", "*", "/var/log/nginx/*"]},
                {"argv": ["grep", "*", "/var/log/nginx/*"]},
                {"argv": ["*", "/var/log/nginx/*"]},
                {"argv": ["*", "--help"]},
                {"argv": ["head", "**"]},
                {"argv": ["ls", "**"]},
                {"argv": ["echo", "**"]},
                {"argv": ["wc", "-l", "/var/log/nginx/*"]},
                {"argv": ["ps", "aux"]},
                {"argv": ["find", "/var/log/nginx", "**"]},
                {"argv": ["awk", "*", "/var/log/nginx/*"]},
                {"argv": ["sort"]},
                {"argv": ["uniq", "-c"]},
                {"regex": "^uptime$"},
                {"regex": "^df -h( /[a-z/]*)?$"},
                {"regex": "^journalctl -n [0-9]{1,4}( --no-pager)?$"},
            ],
        }
    ]
}


def permissive() -> PolicyConfig:
    return parse_policy(PERMISSIVE)


ONCALL_REQUEST: dict[str, Any] = {
    "user_id": ALICE,
    "user_groups": [ONCALL],
    "channel_id": INCIDENT,
    "service_alias": "web",
    "environment": "prod",
}


# The same intent written in the typed forms (int, flags, path, one_of, seq, position): the hostile
# corpus must be refused under it too, and the ordinary commands allowed.
TYPED: dict[str, Any] = {
    "rules": [
        {
            "name": "oncall-logs",
            "groups": [ONCALL],
            "services": ["*"],
            "commands": [
                {"argv": ["cat", {"path": "/var/log/nginx/*", "repeat": True}]},
                {"argv": ["tail", {"seq": ["-n", {"int": {"min": 1, "max": 10000}}], "optional": True},
                          {"path": "/var/log/nginx/*", "repeat": True}]},
                {"argv": ["grep", {"flags": "-cinvE"}, "*", {"path": "/var/log/nginx/*", "repeat": True}]},
                {"argv": ["*", {"path": "/var/log/nginx/*"}]},
                {"argv": ["*", "--help"]},
                {"argv": ["head", "**"]},
                {"argv": ["ls", {"flags": "-la"}, {"path": "/var/log/**", "optional": True, "repeat": True}]},
                {"argv": ["echo", "**"]},
                {"argv": ["wc", {"flags": "-lwc"}, {"path": "/var/log/nginx/*", "optional": True}]},
                {"argv": ["ps", {"one_of": ["aux", "-ef"]}]},
                {"argv": ["find", {"path": "/var/log/nginx"}, "**"]},
                {"argv": ["awk", "*", {"path": "/var/log/nginx/*"}]},
                {"argv": ["sort", {"flags": "-nru"}], "position": "filter"},
                {"argv": ["uniq", {"flags": "-c"}], "position": "filter"},
                {"argv": ["grep", {"flags": "-iv"}, "*"], "position": "filter"},
                {"regex": "^uptime$"},
                {"regex": "^df -h( /[a-z/]*)?$"},
                {"argv": ["journalctl", "-n", {"int": {"min": 1, "max": 9999}},
                          {"one_of": ["--no-pager"], "optional": True}]},
            ],
        }
    ]
}


def typed() -> PolicyConfig:
    return parse_policy(TYPED)
