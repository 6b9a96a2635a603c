"""The latency proxy lives with the benchmarks, which put it in front of their receiver."""

from benchmarks.latency_proxy import LatencyProxy

__all__ = ["LatencyProxy"]
