"""Shared test helpers. Services come from the stormproof pytest plugin (harness/pytest_plugin.py)."""
