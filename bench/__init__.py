"""Benchmarks: run as scripts (see bench/README.md), never collected as tests."""
