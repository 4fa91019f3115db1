"""`ecs-exec-bot demo`: the real bot against local stand-ins, played as a Slack channel transcript.

Modules, each with one job:

- ``local_ecs``: the patched moto ECS API in a child process (moto's state is process-wide, so the
  demo keeps it out of the caller's process) with the demo cluster seeded;
- ``stand_ins``: starts and stops everything the bot talks to (sandbox dir, local agent, local ECS,
  the Slack Web API stand-in) and wires the real bot to them;
- ``slack_payloads``: slash-command and block_actions bodies, signed as Slack signs them (pure);
- ``channel``: turns what the Slack stand-in recorded into channel events (pure);
- ``transcript``: renders those events as a terminal shows a channel (pure);
- ``session``: one running demo: send a command or a click as a user, wait until the bot is done,
  return what the channel saw;
- ``tour``: the scripted steps; ``interactive``: the ``--interactive`` prompt.
"""
