"""The changes feed: every change of a user's lists and tasks, in commit order.

- tasks.seq, lists.seq: the user's write counter (users.seq, bumped first thing by every
  write of the user, under the user's row lock) as the write that last changed the row
  made it. A user's writes commit in the order of their counters, so "every row with a
  seq above the cursor's" misses nothing (docs/sync.md). Rows made before this migration
  have 0: the feed's snapshot brings them.
- deletions: a row for every deleted task and list (its kind, id and the deleting
  write's seq), written by triggers on tasks and lists, whatever deletes them (a route, a
  cascade from a list or a parent, clear completed); kept for CHANGES_RETENTION_DAYS and
  removed by the service itself, a bounded batch at a time. A user deleted by an operator
  leaves none: nobody is left to tell.
- the open_count triggers of migration 0004 also stamp the list with the user's seq: an
  open_count change is a change of the list.
- indexes (user_id, seq, id) for the feed's reads.

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
# The lists' open_count triggers (0004), now stamping the list with the user's seq too.
# (The user's row is gone while an operator's delete of the user cascades: the list, about
# to go too, keeps its seq.)
OPEN_COUNT_STAMP = "seq = coalesce((SELECT u.seq FROM users AS u WHERE u.id = l.user_id), l.seq)"
PG_OPEN_COUNT = {
    "tasks_open_count_insert": """
        UPDATE lists AS l SET open_count = l.open_count + d.n, version = l.version + 1, {stamp}
          FROM (SELECT user_id, list_id, count(*) AS n FROM new_rows
                 WHERE NOT completed GROUP BY user_id, list_id) AS d
         WHERE l.user_id = d.user_id AND l.id = d.list_id;
    """,
    "tasks_open_count_delete": """
        UPDATE lists AS l SET open_count = l.open_count - d.n, version = l.version + 1, {stamp}
          FROM (SELECT user_id, list_id, count(*) AS n FROM old_rows
                 WHERE NOT completed GROUP BY user_id, list_id) AS d
         WHERE l.user_id = d.user_id AND l.id = d.list_id;
    """,
    "tasks_open_count_update": """
        UPDATE lists AS l SET open_count = l.open_count + d.n, version = l.version + 1, {stamp}
          FROM (SELECT user_id, list_id, sum(n) AS n
                  FROM (SELECT user_id, list_id, -1 AS n FROM old_rows WHERE NOT completed
                        UNION ALL
                        SELECT user_id, list_id, 1 FROM new_rows WHERE NOT completed) AS c
                 GROUP BY user_id, list_id HAVING sum(n) <> 0) AS d
         WHERE l.user_id = d.user_id AND l.id = d.list_id;
    """,
}
SQLITE_STAMP = "seq = coalesce((SELECT seq FROM users WHERE users.id = lists.user_id), seq)"
SQLITE_OPEN_COUNT = {
    "tasks_open_count_insert": """
    CREATE TRIGGER tasks_open_count_insert AFTER INSERT ON tasks WHEN NOT NEW.completed BEGIN
        UPDATE lists SET open_count = open_count + 1, version = version + 1{stamp}
         WHERE user_id = NEW.user_id AND id = NEW.list_id;
    END
    """,
    "tasks_open_count_delete": """
    CREATE TRIGGER tasks_open_count_delete AFTER DELETE ON tasks WHEN NOT OLD.completed BEGIN
        UPDATE lists SET open_count = open_count - 1, version = version + 1{stamp}
         WHERE user_id = OLD.user_id AND id = OLD.list_id;
    END
    """,
    "tasks_open_count_update": """
    CREATE TRIGGER tasks_open_count_update AFTER UPDATE OF completed, list_id ON tasks
    WHEN NEW.completed IS NOT OLD.completed OR NEW.list_id IS NOT OLD.list_id BEGIN
        UPDATE lists SET open_count = open_count - 1, version = version + 1{stamp}
         WHERE user_id = OLD.user_id AND id = OLD.list_id AND NOT OLD.completed;
        UPDATE lists SET open_count = open_count + 1, version = version + 1{stamp}
         WHERE user_id = NEW.user_id AND id = NEW.list_id AND NOT NEW.completed;
    END
    """,
}
SQLITE_DELETIONS = """
    CREATE TRIGGER {table}_deletions AFTER DELETE ON {table} BEGIN
        INSERT OR REPLACE INTO deletions (user_id, kind, id, seq, deleted_at)
        SELECT OLD.user_id, {kind}, OLD.id, users.seq, strftime('%Y-%m-%d %H:%M:%f000', 'now')
          FROM users WHERE users.id = OLD.user_id;
    END
"""


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _open_count_triggers(stamped: bool) -> None:
    """(Re)make 0004's open_count triggers, stamping the list's seq or not."""
    if _sqlite():
        for name, statement in SQLITE_OPEN_COUNT.items():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
            op.execute(statement.format(stamp=f", {SQLITE_STAMP}" if stamped else ""))
        return
    for name, body in PG_OPEN_COUNT.items():
        if stamped:
            body = body.format(stamp=OPEN_COUNT_STAMP)
        else:
            body = body.replace(", {stamp}", "")
        op.execute(
            f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body} RETURN NULL; END $$"
        )


def upgrade():
    sqlite = _sqlite()
    for table in ("tasks", "lists"):
        # A plain ADD COLUMN on both databases (no rebuild: SQLite keeps the triggers).
        op.add_column(table, sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False))
        op.create_index(f"ix_{table}_user_seq", table, ["user_id", "seq", "id"])
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
    _open_count_triggers(stamped=True)


def downgrade():
    sqlite = _sqlite()
    _open_count_triggers(stamped=False)
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
    for table in ("lists", "tasks"):
        op.drop_index(f"ix_{table}_user_seq", table_name=table)
        # SQLite (3.35 and later) drops a column in place, keeping the table's triggers.
        op.drop_column(table, "seq")
