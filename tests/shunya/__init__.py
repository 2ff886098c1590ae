"""Tests of the Shunya stub (harness.shunya)."""
