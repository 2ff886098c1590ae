"""Tests of the Shunya stub (stormproof.harness.shunya)."""
