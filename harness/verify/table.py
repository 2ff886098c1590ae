"""The terminal table: one line per cell, then one per scenario with every fix on.

Plain text in fixed columns, so it reads the same in a terminal and in a CI
log; escapes and failures are marked in capitals where the eye lands first.
"""

from __future__ import annotations

from stormproof.harness.verify.outcome import CellResult, Matrix, exit_code

__all__ = ["first_violation_text", "render_table"]


def first_violation_text(result: CellResult) -> str:
    """The median time to first violation; "final state" when the caught tries only broke the final state."""
    median = result.median_first_violation_s
    if median is not None:
        return f"{median:.1f} s"
    return "final state" if result.caught else "–"


def render_table(matrix: Matrix) -> str:
    """The matrix as text, ending with the verdict line."""
    rows = [("weakening", "scenario", "caught", "first violation (median)", "")]
    for result in matrix.cells:
        cell = result.cell
        mark = "ESCAPED" if result.escaped else "ok"
        note = f"  ({cell.problem})" if cell.problem else ""
        rows.append(("+".join(cell.weaken), cell.scenario, f"{result.caught}/{len(result.tries)}",
                     first_violation_text(result), mark + note))
    lines = _columns(rows)
    lines.append("")
    on_rows = [("all fixes on", "passed", "")]
    for result in matrix.all_on:
        bad = [t.reason for t in result.tries if not t.ok]
        if not bad and result.idle:
            bad = [f"{len(result.idle)} of its rows never exercised, see below"]
        on_rows.append((result.scenario, f"{result.passed}/{len(result.tries)}",
                        f"FAILED ({bad[0]})" if bad else "ok"))
    lines += _columns(on_rows) if matrix.all_on else ["all fixes on: not run (--no-all-on)"]
    escaped = sum(c.escaped for c in matrix.cells)
    failed = sum(a.failed for a in matrix.all_on)
    verdict = "PASS" if exit_code(matrix) == 0 else "FAIL"
    lines.append("")
    lines.append(f"verify: {verdict}: {len(matrix.cells) - escaped}/{len(matrix.cells)} cells caught in every try, "
                 f"{len(matrix.all_on) - failed}/{len(matrix.all_on)} scenarios passed every all-on try "
                 f"({matrix.tries} {'try' if matrix.tries == 1 else 'tries'} each, {matrix.wall_s / 60:.1f} min)")
    idle = [f"{a.scenario}: {', '.join(a.idle)}" for a in matrix.all_on if a.idle]
    if idle:
        shortened = "" if matrix.duration_s is None else (
            f"; --duration {matrix.duration_s:g} may drop the load or faults that would have exercised them")
        lines.append("FAILED: promises no all-on try exercised where the table says they are at risk (the scenario "
                     "does less than its rows say, so their weakenings would escape there; make the scenario put them "
                     f"at risk, or name another scenario in harness/promises/table.py{shortened}): " + "; ".join(idle))
    if matrix.uncovered_promises:
        lines.append(f"promises no run verifies (no weakening, no scenario, or a known gap: docs/PROMISES.md, last column): {', '.join(matrix.uncovered_promises)}")
    return "\n".join(lines)


def _columns(rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join(value.ljust(width) for value, width in zip(row, widths)) + "  " + row[-1]
            for row in rows]
