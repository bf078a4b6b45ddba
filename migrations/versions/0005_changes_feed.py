"""The changes feed: every change of a user's lists and tasks, in commit order.

- deletions: a row for every deleted task and list (its kind, id and the deleting
  write's seq), written by triggers on tasks and lists, whatever deletes them (a route, a
  cascade from a list or a parent, clear completed); kept for CHANGES_RETENTION_DAYS and
  removed by the service itself, a bounded batch at a time. A user deleted by an operator
  leaves none: nobody is left to tell.
- indexes for the feed's reads and for the removal of old deletions.

The rows' seq (migration 0004) is the user's write counter as the write that last changed
the row made it; a user's writes commit in the order of their counters, so "every row
with a seq above the cursor's" misses nothing (docs/sync.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TaskId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# The kinds the deletions table stores, as numbers (app/changes/schemas.py): the feed's
# order never depends on a collation.
KINDS = {"tasks": 2, "lists": 1}

# PostgreSQL: statement-level triggers over transition tables, one insert per statement.
# A row put back with the id of a deleted one (by hand: the service never reuses ids) and
# deleted again is remembered once, as its latest deletion.
PG_DELETIONS = """
    INSERT INTO deletions (user_id, kind, id, seq, deleted_at)
    SELECT o.user_id, {kind}, o.id, u.seq, now() FROM old_rows AS o
      JOIN users AS u ON u.id = o.user_id
    ON CONFLICT (user_id, kind, id) DO UPDATE SET seq = excluded.seq,
                                                  deleted_at = excluded.deleted_at;
"""
SQLITE_DELETIONS = """
    CREATE TRIGGER {table}_deletions AFTER DELETE ON {table} BEGIN
        INSERT OR REPLACE INTO deletions (user_id, kind, id, seq, deleted_at)
        SELECT OLD.user_id, {kind}, OLD.id, users.seq, strftime('%Y-%m-%d %H:%M:%f000', 'now')
          FROM users WHERE users.id = OLD.user_id;
    END
"""


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def upgrade():
    sqlite = _sqlite()
    op.create_table(
        "deletions",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.SmallInteger(), nullable=False),
        sa.Column("id", TaskId, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind", "id", name="pk_deletions"),
    )
    op.create_index("ix_deletions_user_seq", "deletions", ["user_id", "seq", "kind", "id"])
    op.create_index("ix_deletions_deleted_at", "deletions", ["deleted_at"])
    for table, kind in KINDS.items():
        if sqlite:
            op.execute(SQLITE_DELETIONS.format(table=table, kind=kind))
        else:
            name = f"{table}_deletions"
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {PG_DELETIONS.format(kind=kind)} RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} AFTER DELETE ON {table} REFERENCING OLD TABLE AS "
                f"old_rows FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )


def downgrade():
    sqlite = _sqlite()
    for table in KINDS:
        name = f"{table}_deletions"
        if sqlite:
            op.execute(f"DROP TRIGGER {name}")
        else:
            op.execute(f"DROP TRIGGER {name} ON {table}")
            op.execute(f"DROP FUNCTION {name}()")
    op.drop_index("ix_deletions_deleted_at", table_name="deletions")
    op.drop_index("ix_deletions_user_seq", table_name="deletions")
    op.drop_table("deletions")
