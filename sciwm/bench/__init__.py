"""Benchmark suites behind ``sciwm bench SUITE --out FILE.json [--quick]``.

A front-door module: it may import the implementations (surrogates, scheduler) to run them.
"""
