"""Tooling that the tests, scripts and benchmarks share; nothing here is part of the program."""
