"""Turn real answers of the reference app into a history and a snapshot, so the row's checker judges them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import httpx

from stormproof.harness.history import History, Op, classify
from stormproof.harness.invariants import Snapshot
from stormproof.harness.load.client import extract_result, payload_fingerprint
from tests.invariants.builders import MS, HistoryBuilder


class Recorder:
    """Each answer becomes an invoke and its completion, with the result fields the load would record."""

    def __init__(self, company_ids: list[str]) -> None:
        self.builder = HistoryBuilder()
        self.company_ids = company_ids
        self.clock = 0.0

    def record(self, f: str, tenant: str, response: httpx.Response, *, body: Any = None,
               wall: tuple[float, float] | None = None, **args: Any) -> None:
        """``wall``: the real (sent, answered) wall times, for a checker that compares them with the app's clock
        (otherwise the recorder's own clock, 10 ms a request, stands in)."""
        self.record_together(f, tenant, [response], body=body, **args)
        if wall is not None:
            done = self.builder.ops[-1]
            invoke = self.builder.ops[done.invoke_index]
            self.builder.ops[invoke.index] = replace(invoke, wall=wall[0])
            self.builder.ops[done.index] = replace(done, wall=wall[1])

    def record_together(self, f: str, tenant: str, responses: list[httpx.Response], *, body: Any = None,
                        **args: Any) -> None:
        """Requests that were in flight at once: every invoke first, then every completion."""
        if body is not None:
            args["payload_fp"] = payload_fingerprint(body)
        self.clock += 10
        invokes = []
        for n, response in enumerate(responses, 1):
            key = response.request.headers.get("Idempotency-Key")
            invokes.append(self.builder.invoke(f, self.clock, process=f"p{n}", tenant=tenant,
                                               **({**args, "idempotency_key": key} if key is not None else args)))
        at = self.clock + 5
        for invoke, response in zip(invokes, responses):
            result, _ = extract_result(response.content, response.headers.get("Idempotent-Replayed") == "true",
                                       self.company_ids)
            if response.status_code == 429:
                result["retry_after"] = response.headers.get("Retry-After") or ""
            # Not builder.complete(): the body's own "status" would clash with its status argument.
            inv = self.builder.ops[invoke]
            self.builder.ops.append(Op(len(self.builder.ops), classify(response.status_code, None), inv.process, f,
                                       tenant, inv.args, response.status_code, result, None, int(at * MS),
                                       1e9 + at / 1e3, invoke))
            at += 1

    def history(self) -> History:
        return self.builder.build()


def snapshot(database_url: str) -> Snapshot:
    """The final state, read as the runner's capture reads it."""
    from stormproof.harness.runner.capture import read_state

    tables, counted = read_state(database_url.replace("postgresql+psycopg://", "postgresql://"))
    return Snapshot.build(tables, rows_by_company=counted)
