"""Benchmarks (`python -m bench.<name>`) and the browser harness they share with the tests."""
