"""Reliability harnesses (issue 8): faults, hostile input, concurrency, load.

Short forms run in make test; long forms (marked long) in make soak.
"""
