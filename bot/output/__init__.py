"""Output of a command: bounded capture → clean → redact → Slack rendering (all pure)."""
