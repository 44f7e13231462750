"""Peer pipelines (Daft, Ray Data) for `benchmarks/bench_peers.py`; they run in `.venv-peers`."""
