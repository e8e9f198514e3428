"""Test-data helpers shipped with the package (image generator for tests, benchmarks and demos)."""
