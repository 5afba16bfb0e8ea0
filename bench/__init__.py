"""Side-by-side benchmarks of refresher and the usual anti-stampede patterns.

`python -m bench` (or `make bench`) starts its own redis-server on a free loopback port,
runs every scenario against every strategy in one run, prints one table per scenario and
writes docs/benchmarks.md with the hot-key plot beside it. `--quick` scales it down.
"""
