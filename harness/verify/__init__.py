"""``stormproof verify``: the sensitivity matrix, proof that every check has teeth.

A checker that never fails proves nothing. Each scenario file names the fixes
it exists to catch (``weaken``) and the invariants that must then break
(``expect``); the promise table (``stormproof.harness.promises``, when present) adds one
row per promise. ``verify`` turns both into cells, (weakening set, scenario)
-> expected invariants, runs each cell against the weakened app a few times
with different seeds, and runs every scenario of the matrix with every fix on.
A weakening that escapes in any try, or an all-on run that fails, fails the
command, so a scenario tuned until it caught its bug once cannot quietly
stop catching it.

- ``cells``: building and selecting the cells;
- ``judge``: what one run says about a cell (caught, escaped, time to first violation);
- ``matrix``: running the cells and the all-on runs, one at a time;
- ``outcome``: the matrix's result as data, its exit code and ``verify.json``;
- ``table`` and ``page``: the terminal table and the HTML page;
- ``command``: ``stormproof verify`` end to end.
"""

from stormproof.harness.verify.cells import Cell, VerifyError, build_cells, select_cells
from stormproof.harness.verify.command import VerifyArgs, verify
from stormproof.harness.verify.judge import first_violation_s, judge_all_on, judge_weakened
from stormproof.harness.verify.matrix import run_matrix
from stormproof.harness.verify.outcome import (
    VERIFY_FILE,
    AllOnResult,
    CellResult,
    Matrix,
    Try,
    exit_code,
    matrix_to_dict,
    schema_path,
    write_verify_json,
)
from stormproof.harness.verify.page import PAGE_FILE, render_page, write_page
from stormproof.harness.verify.table import render_table

__all__ = [
    "PAGE_FILE",
    "VERIFY_FILE",
    "AllOnResult",
    "Cell",
    "CellResult",
    "Matrix",
    "Try",
    "VerifyArgs",
    "VerifyError",
    "build_cells",
    "exit_code",
    "first_violation_s",
    "judge_all_on",
    "judge_weakened",
    "matrix_to_dict",
    "render_page",
    "render_table",
    "run_matrix",
    "schema_path",
    "select_cells",
    "verify",
    "write_page",
    "write_verify_json",
]
