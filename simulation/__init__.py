"""Simulated support traffic for the demo, tests and benchmarks: a seeded generator of tickets and their
stories (`traffic.py`) and their rendering as each source's own payloads (`native_payloads.py`).

Not domain logic: nothing in `processors/` imports it. It stays pure (no I/O, time passed in) so a seed
gives the same stream everywhere.
"""
