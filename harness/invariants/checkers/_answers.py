"""One pass over every answer of a history, shared by the checkers that read all of them.

slo-latency-p95, slo-error-rate, trace-echoed and metrics-agree each used to
walk every pair of the history for a few fields; on a 1,000,000-op history
each walk cost a tenth of a second or more (bench/bench_checkers.py). This
module walks it once per history (``History.view``), one operation at a time
so that the per-operation figures need no lookup per op, and each checker
reads its part. What each part holds is exactly what its checker computed
before, in the same order.
"""

from __future__ import annotations

from stormproof.harness.history import History
from stormproof.harness.history.vocabulary import NEMESIS

__all__ = ["Answers", "EXAMPLES", "answers"]

#: Error ops kept as examples (slo-error-rate lists this many).
EXAMPLES = 20


class Answers:
    """What the whole-history checkers read, from one pass.

    - ``latencies``: operation -> latency (ns) of each ``ok`` client op, in invoke order;
    - ``totals`` / ``errors``: operation -> client ops / those without a definite answer
      (no completion, ``info``, or a 5xx status);
    - ``error_examples``: the first ``EXAMPLES`` errors in invoke order (the completion's
      index, the invoke's when it never completed);
    - ``traced``: answers (a completion with a status) that recorded ``result.trace``;
      ``trace_wrong``: ``other`` / ``missing`` -> their completion indices, in invoke order;
    - ``replayed``: ``ok`` completions with ``result.replayed`` set, in invoke order.

    Client ops are those not sent by the nemesis; the trace and replay parts read every op.
    """

    __slots__ = ("latencies", "totals", "errors", "error_examples", "traced", "trace_wrong", "replayed")

    def __init__(self, history: History) -> None:
        latencies: dict[str, list[int]] = {}
        totals: dict[str, int] = {}
        errors: dict[str, int] = {}
        examples: list[tuple[int, int]] = []  # (invoke index, listed index): merged across operations below
        wrong: list[tuple[int, int, str]] = []
        replayed: list[tuple[int, int]] = []
        traced = 0
        for f, pairs in history.grouped().items():
            latency: list[int] = []
            append = latency.append
            total = failed = 0
            f_examples: list[tuple[int, int]] = []
            for invoke, completion in pairs:
                client = invoke.process != NEMESIS
                if completion is None:
                    if client:
                        total += 1
                        failed += 1
                        if len(f_examples) < EXAMPLES:
                            f_examples.append((invoke.index, invoke.index))
                    continue
                kind = completion.type
                status = completion.status
                if client:
                    total += 1
                    if kind == "ok":
                        append(completion.time_ns - invoke.time_ns)
                    if kind == "info" or (status or 0) >= 500:
                        failed += 1
                        if len(f_examples) < EXAMPLES:
                            f_examples.append((invoke.index, completion.index))
                result = completion.result
                if not result:
                    continue
                if status is not None:
                    trace = result.get("trace")
                    if trace is not None:
                        traced += 1
                        if trace == "other" or trace == "missing":
                            wrong.append((invoke.index, completion.index, trace))
                if kind == "ok" and result.get("replayed"):
                    replayed.append((invoke.index, completion.index))
            if latency:
                latencies[f] = latency
            if total:
                totals[f] = total
                errors[f] = failed
            examples.extend(f_examples)
        examples.sort()
        wrong.sort()
        replayed.sort()
        self.latencies = latencies
        self.totals = totals
        self.errors = errors
        self.error_examples = [listed for _, listed in examples[:EXAMPLES]]
        self.traced = traced
        self.trace_wrong: dict[str, list[int]] = {"other": [], "missing": []}
        for _, index, trace in wrong:
            self.trace_wrong[trace].append(index)
        self.replayed = [index for _, index in replayed]


def answers(history: History) -> Answers:
    """The history's ``Answers``, built once and shared (do not change it)."""
    return history.view(Answers)
