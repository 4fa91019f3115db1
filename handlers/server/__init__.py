"""How Slack reaches the bot: the HTTP listener (`/slack/events` + `/healthz`), Socket Mode, and the
tracked background jobs that a SIGTERM drains. Nothing here knows what a command does."""
