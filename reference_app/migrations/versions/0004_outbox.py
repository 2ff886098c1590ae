"""The transactional outbox: every task to run, written with the business write that caused it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DDL = """
CREATE TABLE outbox (
    task_id varchar(64) PRIMARY KEY,
    name varchar(100) NOT NULL,
    kwargs json NOT NULL,
    company_id uuid NULL,
    dedupe_key varchar(200) NULL,
    trace_id varchar(64) NULL,
    due_at timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz NULL,
    started_at timestamptz NULL,
    publications integer NOT NULL DEFAULT 0,
    started_publication integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ix_outbox_unpublished ON outbox (due_at) WHERE published_at IS NULL;
CREATE INDEX ix_outbox_published ON outbox (published_at) WHERE published_at IS NOT NULL;
CREATE UNIQUE INDEX ux_outbox_live_work_item ON outbox (name, dedupe_key) WHERE dedupe_key IS NOT NULL;
"""


def upgrade() -> None:
    op.execute(DDL)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS outbox")
