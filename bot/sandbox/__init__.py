"""Local stand-ins for AWS used by the demo, the benchmarks and the tests.

``bot.sandbox.agent`` plays the AWS side of ECS Exec sessions (agent + MGS data channel, SSM and
KMS JSON APIs) on one loopback port. Import submodules directly; this package imports nothing, so
``python -m bot.sandbox.agent`` and light users do not pay for what they do not use.
"""
