"""Local stand-ins for AWS used by the demo, the benchmarks and the tests.

``standins.agent`` plays the AWS side of ECS Exec sessions (agent + MGS data channel, SSM and
KMS JSON APIs) on one loopback port. Import submodules directly; this package imports nothing, so
``python -m standins.agent`` and light users do not pay for what they do not use.
"""
