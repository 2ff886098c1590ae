"""Hand-made histories for checker tests: times in milliseconds, indices returned for assertions."""

from __future__ import annotations

from typing import Any

from stormproof.harness.history import History, Op, OpType, classify

MS = 1_000_000


class HistoryBuilder:
    """Append invokes and completions at explicit times; ``build()`` gives the History."""

    def __init__(self) -> None:
        self.ops: list[Op] = []

    def invoke(self, f: str, at: float, *, process: str = "p1", tenant: str | None = "c1", **args: Any) -> int:
        index = len(self.ops)
        self.ops.append(Op(index, "invoke", process, f, tenant, args, time_ns=int(at * MS), wall=1e9 + at / 1e3))
        return index

    def complete(self, invoke: int, at: float, status: int | None = None, /, *, type: OpType | None = None,
                 error: str | None = None, **result: Any) -> int:
        inv = self.ops[invoke]
        index = len(self.ops)
        op_type = type or classify(status, error)
        self.ops.append(Op(index, op_type, inv.process, inv.f, inv.tenant, inv.args, status, result, error,
                           int(at * MS), 1e9 + at / 1e3, invoke))
        return index

    def call(self, f: str, start: float, end: float, status: int | None, *, process: str = "p1",
             tenant: str | None = "c1", result: dict[str, Any] | None = None, **args: Any) -> tuple[int, int]:
        """An invoke and its completion, when nothing else interleaves between them in index order."""
        invoke = self.invoke(f, start, process=process, tenant=tenant, **args)
        return invoke, self.complete(invoke, end, status, **(result or {}))

    def build(self) -> History:
        """Ops re-sorted by time (stable), as a recorder would have written them."""
        order = sorted(range(len(self.ops)), key=lambda i: (self.ops[i].time_ns, i))
        position = {old: new for new, old in enumerate(order)}
        self.position = position
        rebuilt = []
        for new, old in enumerate(order):
            op = self.ops[old]
            rebuilt.append(Op(new, op.type, op.process, op.f, op.tenant, op.args, op.status, op.result, op.error,
                              op.time_ns, op.wall, None if op.invoke_index is None else position[op.invoke_index]))
        return History(rebuilt)

    def at(self, old_index: int) -> int:
        """The index in the built history of the op that ``invoke``/``complete`` returned."""
        return self.position[old_index]
