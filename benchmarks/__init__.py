"""Benchmark harness: the same workloads on actorlib, Ray and ProcessPoolExecutor.

Run ``python -m benchmarks --help``; README.md beside this file explains the figures.
This package must stay importable by any interpreter (Ray's venv has no psutil or
trio), so this module imports nothing.
"""
