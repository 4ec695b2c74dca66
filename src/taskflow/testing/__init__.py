"""Tools for testing with taskflow: hypothesis strategies, stateful workflow checks, contract suites.

Needs the `testing` extra (hypothesis, pytest).
"""
