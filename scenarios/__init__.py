"""Named scenarios: load mix, fault schedule, invariants, SLOs and seed, as plain data.

The scenario files and their loader arrive with the scenarios issue; this
package is where they live so that ``stormproof run NAME`` finds them.
"""
