"""Benchmarks: `make bench` (python -m bench) runs them and writes figures to bench/results/."""
