"""Benchmarks: each module is a script printing `key: value` lines; `python -m benchmarks` runs them all."""
