"""Benchmark suite: `infill bench` (see benchmarks/run.py); results in benchmarks/results/."""
