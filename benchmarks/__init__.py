"""Benchmarks: throughput, embargo-lift latency and memory, next to the naive Celery pattern.

Run with `make bench` or `python -m benchmarks --help`; the report goes to docs/benchmarks.md.
"""
