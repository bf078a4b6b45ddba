"""Priority, due dates, tags, completed_at, ETag versions, idempotency keys; keys by user.

- tasks: priority (existing tasks: medium), due_date, tags (none), completed_at (for
  tasks already completed: their updated_at, the best moment known), version (1).
- PostgreSQL: tasks' primary key becomes (user_id, id), so every key of a user's data
  includes user_id (ready to be distributed by user); ids still come from its sequence.
- SQLite numbers only a lone INTEGER PRIMARY KEY, and reused freed ids: its tasks table
  keeps that key, now with AUTOINCREMENT (ids never reused again, counting on from the
  largest id in the table), and gains a unique (user_id, id) beside it for task_tags'
  foreign key. SQLite is the local single-file default, never distributed.
- task_tags (the case-folded keys behind the tag filter) and idempotency_keys.
- indexes for the new sorts and filters; on PostgreSQL, pg_trgm indexes for q.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TaskId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
JSONList = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
NEW_INDEXES = [
    ("ix_tasks_user_priority", ["user_id", "priority", "id"]),
    ("ix_tasks_user_due", ["user_id", "due_date", "id"]),
]
PG_INDEXES = {
    "ix_tasks_user_due_desc": "ON tasks (user_id, due_date DESC NULLS LAST, id DESC)",
    "ix_tasks_title_trgm": "ON tasks USING gin (lower(title) gin_trgm_ops)",
    "ix_tasks_description_trgm": "ON tasks USING gin (lower(description) gin_trgm_ops)",
}
# SQLite drops a table's triggers when batch mode rebuilds it: migration 0002's, again.
SQLITE_COUNTER_TRIGGERS = {
    "tasks_counters_insert": """
    CREATE TRIGGER tasks_counters_insert AFTER INSERT ON tasks BEGIN
        UPDATE users SET task_count = task_count + 1,
                         completed_count = completed_count + NEW.completed
         WHERE id = NEW.user_id;
    END
    """,
    "tasks_counters_delete": """
    CREATE TRIGGER tasks_counters_delete AFTER DELETE ON tasks BEGIN
        UPDATE users SET task_count = task_count - 1,
                         completed_count = completed_count - OLD.completed
         WHERE id = OLD.user_id;
    END
    """,
    "tasks_counters_update": """
    CREATE TRIGGER tasks_counters_update AFTER UPDATE OF completed ON tasks
    WHEN NEW.completed IS NOT OLD.completed BEGIN
        UPDATE users SET completed_count = completed_count
                         + CASE WHEN NEW.completed THEN 1 ELSE -1 END
         WHERE id = NEW.user_id;
    END
    """,
}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _rebuild_tasks(*, add: bool) -> None:
    """Add (or drop) the new columns and change tasks' keys: plain ALTERs on PostgreSQL,
    one rebuild of the table on SQLite (whose triggers it drops: made again here)."""
    sqlite = _sqlite()
    if sqlite:
        for name in SQLITE_COUNTER_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
    options = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": add}} if sqlite else {}
    with op.batch_alter_table("tasks", **options) as batch:
        if sqlite and add:
            batch.create_unique_constraint("uq_tasks_user_id_id", ["user_id", "id"])
        elif sqlite:
            batch.drop_constraint("uq_tasks_user_id_id", type_="unique")
        else:
            batch.drop_constraint("pk_tasks", type_="primary")
            batch.create_primary_key("pk_tasks", ["user_id", "id"] if add else ["id"])
        if add:
            batch.add_column(sa.Column("priority", sa.SmallInteger(), server_default="1", nullable=False))
            batch.add_column(sa.Column("due_date", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("tags", JSONList, server_default="[]", nullable=False))
            batch.add_column(sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        else:
            for column in ("version", "completed_at", "tags", "due_date", "priority"):
                batch.drop_column(column)
    if sqlite:
        for statement in SQLITE_COUNTER_TRIGGERS.values():
            op.execute(statement)


def upgrade():
    sqlite = _sqlite()
    if not sqlite:
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    _rebuild_tasks(add=True)
    op.execute("UPDATE tasks SET completed_at = updated_at WHERE completed")

    op.create_table(
        "task_tags",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=150), nullable=False),
        sa.Column("task_id", TaskId, nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id", "task_id"],
            ["tasks.user_id", "tasks.id"],
            name=op.f("fk_task_tags_user_id_tasks"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "tag", "task_id", name=op.f("pk_task_tags")),
    )
    op.create_index("ix_task_tags_user_task", "task_tags", ["user_id", "task_id"])
    op.create_table(
        "idempotency_keys",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("task_id", TaskId, nullable=True),
        sa.Column("response", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_idempotency_keys_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("user_id", "key", name=op.f("pk_idempotency_keys")),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])
    for name, columns in NEW_INDEXES:
        op.create_index(name, "tasks", columns)
    if not sqlite:
        for name, definition in PG_INDEXES.items():
            op.execute(f"CREATE INDEX {name} {definition}")


def downgrade():
    sqlite = _sqlite()
    if not sqlite:
        for name in PG_INDEXES:
            op.execute(f"DROP INDEX {name}")
    for name, _ in reversed(NEW_INDEXES):
        op.drop_index(name, table_name="tasks")
    op.drop_index("ix_idempotency_keys_created", table_name="idempotency_keys")
    op.drop_table("idempotency_keys")
    op.drop_index("ix_task_tags_user_task", table_name="task_tags")
    op.drop_table("task_tags")
    _rebuild_tasks(add=False)
