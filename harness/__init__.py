"""Stormproof's harness: stack, faults, load, history, invariants, reports.

Each concept is a subpackage; see the README for the shape of a run.
"""

__version__ = "0.1.0"
