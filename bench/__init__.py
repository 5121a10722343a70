"""Benchmarks: `make bench` runs every `bench/bench_*.py` and writes JSON under bench/results/."""
