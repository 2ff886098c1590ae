"""The Idempotency-Key claim in one round trip (issue 17): ``idempotency_claim()``.

A keyed write took the key's advisory lock and then read the stored key: two
statements, because a read in the lock's own statement would use a snapshot
taken before the lock, and could miss the answer that the previous holder
committed in between. A VOLATILE PL/pgSQL function takes a fresh snapshot for
each query it runs (read committed), so its read after the lock sees every
answer committed before the lock was granted: the same guarantee as two
statements, one round trip.

It returns one row: ``locked`` (false: another request holds the key; the
other columns are null), ``found`` (a row is stored under the key) and the
stored row's columns. ``p_take_lock`` false is the weakening
``idempotency-in-flight`` (no lock: the read alone).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE OR REPLACE FUNCTION idempotency_claim(p_company uuid, p_key text, p_lock text, p_take_lock boolean)
        RETURNS TABLE (locked boolean, found boolean, fingerprint text, method text, path text, state text,
                       lease_expires_at timestamptz, expires_at timestamptz, response_status integer,
                       response_content_type text, response_body bytea)
        LANGUAGE plpgsql VOLATILE AS $$
        #variable_conflict use_column
        BEGIN
            IF p_take_lock AND NOT pg_try_advisory_xact_lock(hashtextextended(p_lock, 0)) THEN
                locked := false;
                found := false;
                RETURN NEXT;
                RETURN;
            END IF;
            -- A new query: a new snapshot, taken after the lock was granted.
            RETURN QUERY
                SELECT true, true, k.fingerprint::text, k.method::text, k.path::text, k.state::text,
                       k.lease_expires_at, k.expires_at, k.response_status, k.response_content_type::text,
                       k.response_body
                FROM idempotency_keys k
                WHERE k.company_id = p_company AND k.key = p_key;
            IF NOT FOUND THEN
                locked := true;
                found := false;
                RETURN NEXT;
            END IF;
        END
        $$
        """
    )


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS idempotency_claim(uuid, text, text, boolean)")
