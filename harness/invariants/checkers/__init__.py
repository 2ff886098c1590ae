"""One module per invariant checker; each registers itself with ``stormproof.harness.invariants.registry.checker``.

The registry imports every module here on first use: adding a checker is
adding a module, nothing else changes.
"""

__all__: list[str] = []
