"""Benchmarks (`python bench/<name>.py`) and the browser harness they share with the tests."""
