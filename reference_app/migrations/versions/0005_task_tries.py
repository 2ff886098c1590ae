"""Per-try times on the task ledger (plan C1): when each try began, and the wait each retry chose.

``task_records.tries`` is a JSON list of events, appended by the app with
PostgreSQL's own clock (``clock_timestamp()``, unix seconds), so that every
time in it comes from one clock:

- ``{"event": "start", "at": t}``: a try began (a worker claimed the task);
- ``{"event": "retry", "at": t, "wait_s": w, "failure": k, "throttled": b}``: the
  try ended and the task must run again ``w`` seconds later; ``failure`` is how
  many tries failed so far (null for the next poll of a pending job, which is
  not a failure), ``throttled`` says a rate limit's Retry-After set a floor.

The harness reads it to judge the backoff promise (the n-th retry after a
failure waits uniform(0, min(cap, base * 2**n))) and to see that no retry ran
before its wait was over.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE task_records ADD COLUMN tries jsonb NOT NULL DEFAULT '[]'::jsonb")


def downgrade() -> None:
    op.execute("ALTER TABLE task_records DROP COLUMN IF EXISTS tries")
