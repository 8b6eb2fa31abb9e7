"""Benchmarks for Monitor (SPEC §9): `make bench`, or `python -m bench --help`."""
