"""Helpers of `scripts/bench.py`: the benchmarked variants, the interleaved timer, the data-path count."""
