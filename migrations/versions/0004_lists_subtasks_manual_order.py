"""Lists, subtasks and manual order; a per-user write counter.

- users.seq: bumped first thing by every write of the user (the row lock it takes puts a
  user's writes one after another: positions are computed on a sibling set nobody else
  is changing, and the tree rules see a tree nobody else is changing).
- lists, keyed by (user_id, id) on PostgreSQL (on SQLite, like tasks, its auto-numbered
  INTEGER PRIMARY KEY with a unique (user_id, id) beside it); one default list per user;
  open_count kept exact by triggers on tasks, which also bump the list's version (its
  ETag) when it changes.
- tasks.list_id, tasks.parent_id (both foreign keys that include user_id, deleting in
  cascade) and tasks.position (compared byte by byte: COLLATE "C" on PostgreSQL, SQLite's
  default). Every user who has tasks gets a default list "Tasks"; their tasks go there, at
  the top level, in the order they were created (oldest first, ids breaking ties).
- idempotency_keys: task_id becomes resource_id (a key may make a task or a list) and the
  first response's ETag is kept with its body.
- indexes for a list in manual order, a list's level, and a task's subtasks.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op
from fractional_indexing import generate_n_keys_between

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

TaskId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
Position = sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql")
TASK_INDEXES = [
    ("ix_tasks_user_list_position", ["user_id", "list_id", "position", "id"]),
    ("ix_tasks_user_list_parent", ["user_id", "list_id", "parent_id", "position", "id"]),
    ("ix_tasks_user_parent_position", ["user_id", "parent_id", "position", "id"]),
]
DEFAULT_TITLE = "Tasks"

# open_count: the list's tasks that are not completed, kept by the database for every
# write, whoever makes it. PostgreSQL: statement-level triggers over transition tables
# (one update per list and statement, as migration 0002's counters).
PG_FUNCTIONS = {
    "tasks_open_count_insert": """
        UPDATE lists AS l SET open_count = l.open_count + d.n, version = l.version + 1
          FROM (SELECT user_id, list_id, count(*) AS n FROM new_rows
                 WHERE NOT completed GROUP BY user_id, list_id) AS d
         WHERE l.user_id = d.user_id AND l.id = d.list_id;
    """,
    "tasks_open_count_delete": """
        UPDATE lists AS l SET open_count = l.open_count - d.n, version = l.version + 1
          FROM (SELECT user_id, list_id, count(*) AS n FROM old_rows
                 WHERE NOT completed GROUP BY user_id, list_id) AS d
         WHERE l.user_id = d.user_id AND l.id = d.list_id;
    """,
    "tasks_open_count_update": """
        UPDATE lists AS l SET open_count = l.open_count + d.n, version = l.version + 1
          FROM (SELECT user_id, list_id, sum(n) AS n
                  FROM (SELECT user_id, list_id, -1 AS n FROM old_rows WHERE NOT completed
                        UNION ALL
                        SELECT user_id, list_id, 1 FROM new_rows WHERE NOT completed) AS c
                 GROUP BY user_id, list_id HAVING sum(n) <> 0) AS d
         WHERE l.user_id = d.user_id AND l.id = d.list_id;
    """,
}
PG_TRIGGERS = {
    "tasks_open_count_insert": "AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows",
    "tasks_open_count_delete": "AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows",
    "tasks_open_count_update": (
        "AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
}
SQLITE_OPEN_COUNT_TRIGGERS = {
    "tasks_open_count_insert": """
    CREATE TRIGGER tasks_open_count_insert AFTER INSERT ON tasks WHEN NOT NEW.completed BEGIN
        UPDATE lists SET open_count = open_count + 1, version = version + 1
         WHERE user_id = NEW.user_id AND id = NEW.list_id;
    END
    """,
    "tasks_open_count_delete": """
    CREATE TRIGGER tasks_open_count_delete AFTER DELETE ON tasks WHEN NOT OLD.completed BEGIN
        UPDATE lists SET open_count = open_count - 1, version = version + 1
         WHERE user_id = OLD.user_id AND id = OLD.list_id;
    END
    """,
    "tasks_open_count_update": """
    CREATE TRIGGER tasks_open_count_update AFTER UPDATE OF completed, list_id ON tasks
    WHEN NEW.completed IS NOT OLD.completed OR NEW.list_id IS NOT OLD.list_id BEGIN
        UPDATE lists SET open_count = open_count - 1, version = version + 1
         WHERE user_id = OLD.user_id AND id = OLD.list_id AND NOT OLD.completed;
        UPDATE lists SET open_count = open_count + 1, version = version + 1
         WHERE user_id = NEW.user_id AND id = NEW.list_id AND NOT NEW.completed;
    END
    """,
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


def _rebuild_tasks(change) -> None:  # type: ignore[no-untyped-def]
    """Apply ``change`` to tasks in batch mode: plain ALTERs on PostgreSQL, one rebuild of
    the table on SQLite, which drops its triggers (made again here) and would restart its
    AUTOINCREMENT counter at the largest id left (restored here, so ids are never reused)."""
    if not _sqlite():
        with op.batch_alter_table("tasks") as batch:
            change(batch)
        return
    bind = op.get_bind()
    counter = bind.execute(sa.text("SELECT seq FROM sqlite_sequence WHERE name = 'tasks'"))
    last_id = counter.scalar()
    triggers = bind.execute(
        sa.text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'tasks'")
    ).scalars()
    for name in list(triggers):
        op.execute(f"DROP TRIGGER {name}")
    options = {"recreate": "always", "table_kwargs": {"sqlite_autoincrement": True}}
    with op.batch_alter_table("tasks", **options) as batch:
        change(batch)
    if last_id is not None:
        op.execute(
            sa.text("UPDATE sqlite_sequence SET seq = max(seq, :last) WHERE name = 'tasks'")
            .bindparams(last=last_id)
        )


def _sqlite_triggers(*groups: dict[str, str]) -> None:
    for group in groups:
        for statement in group.values():
            op.execute(statement)


def upgrade():
    sqlite = _sqlite()
    bind = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None) if sqlite else datetime.now(UTC)

    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False))

    if sqlite:
        keys = [
            sa.PrimaryKeyConstraint("id", name="pk_lists"),
            sa.UniqueConstraint("user_id", "id", name="uq_lists_user_id_id"),
        ]
    else:
        keys = [sa.PrimaryKeyConstraint("user_id", "id", name="pk_lists")]
    op.create_table(
        "lists",
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("id", TaskId, autoincrement=True, nullable=False),
        sa.Column("title", sa.String(length=100), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("is_default", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("position", Position, nullable=False),
        sa.Column("open_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_lists_user_id_users", ondelete="CASCADE"
        ),
        *keys,
        sqlite_autoincrement=True,
    )
    op.create_index("ix_lists_user_position", "lists", ["user_id", "position", "id"])
    op.create_index(
        "ix_lists_user_default",
        "lists",
        ["user_id"],
        unique=True,
        sqlite_where=sa.text("is_default"),
        postgresql_where=sa.text("is_default"),
    )

    # Every user who has tasks: a default list, first in their order.
    first = generate_n_keys_between(None, None, 1)[0]
    op.execute(
        sa.text(
            "INSERT INTO lists (user_id, title, is_default, position, created_at, updated_at) "
            "SELECT DISTINCT user_id, :title, :yes, :position, :now, :now FROM tasks"
        ).bindparams(
            sa.bindparam("now", now, type_=sa.DateTime(timezone=True)),
            title=DEFAULT_TITLE,
            yes=True,
            position=first,
        )
    )

    def add_columns(batch) -> None:  # type: ignore[no-untyped-def]
        batch.add_column(sa.Column("list_id", TaskId, nullable=True))
        batch.add_column(sa.Column("parent_id", TaskId, nullable=True))
        batch.add_column(sa.Column("position", Position, nullable=True))

    with op.batch_alter_table("tasks") as batch:
        add_columns(batch)
    op.execute(
        "UPDATE tasks SET list_id = (SELECT lists.id FROM lists "
        "WHERE lists.user_id = tasks.user_id AND lists.is_default)"
    )
    # Each user's tasks, oldest first, on consecutive keys.
    rows = bind.execute(sa.text("SELECT user_id, id FROM tasks ORDER BY user_id, created_at, id"))
    placed: list[dict[str, object]] = []
    owner, ids = None, []

    def flush() -> None:
        keys = generate_n_keys_between(None, None, len(ids))
        placed.extend({"u": owner, "i": i, "p": k} for i, k in zip(ids, keys, strict=True))

    for user_id, task_id in rows:
        if user_id != owner and ids:
            flush()
            ids = []
        owner = user_id
        ids.append(task_id)
    if ids:
        flush()
    if placed:
        bind.execute(
            sa.text("UPDATE tasks SET position = :p WHERE user_id = :u AND id = :i"), placed
        )
    op.execute(
        "UPDATE lists SET open_count = (SELECT count(*) FROM tasks WHERE tasks.user_id = "
        "lists.user_id AND tasks.list_id = lists.id AND NOT tasks.completed)"
    )

    def constrain(batch) -> None:  # type: ignore[no-untyped-def]
        batch.alter_column("list_id", existing_type=TaskId, nullable=False)
        batch.alter_column("position", existing_type=Position, nullable=False)
        batch.create_foreign_key(
            "fk_tasks_user_id_lists",
            "lists",
            ["user_id", "list_id"],
            ["user_id", "id"],
            ondelete="CASCADE",
        )
        batch.create_foreign_key(
            "fk_tasks_user_id_tasks",
            "tasks",
            ["user_id", "parent_id"],
            ["user_id", "id"],
            ondelete="CASCADE",
        )

    _rebuild_tasks(constrain)
    for name, columns in TASK_INDEXES:
        op.create_index(name, "tasks", columns)

    if sqlite:
        _sqlite_triggers(SQLITE_COUNTER_TRIGGERS, SQLITE_OPEN_COUNT_TRIGGERS)
    else:
        for name, body in PG_FUNCTIONS.items():
            op.execute(
                f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
                f"BEGIN {body} RETURN NULL; END $$"
            )
            op.execute(
                f"CREATE TRIGGER {name} {PG_TRIGGERS[name]} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
            )

    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("task_id", new_column_name="resource_id", existing_type=TaskId)
        batch.add_column(sa.Column("etag", sa.String(length=100), nullable=True))


def downgrade():
    sqlite = _sqlite()
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("etag")
        batch.alter_column("resource_id", new_column_name="task_id", existing_type=TaskId)
    if not sqlite:
        for name in PG_FUNCTIONS:
            op.execute(f"DROP TRIGGER {name} ON tasks")
            op.execute(f"DROP FUNCTION {name}()")
    for name, _ in reversed(TASK_INDEXES):
        op.drop_index(name, table_name="tasks")

    def unconstrain(batch) -> None:  # type: ignore[no-untyped-def]
        batch.drop_constraint("fk_tasks_user_id_tasks", type_="foreignkey")
        batch.drop_constraint("fk_tasks_user_id_lists", type_="foreignkey")
        batch.drop_column("position")
        batch.drop_column("parent_id")
        batch.drop_column("list_id")

    # Subtasks become top-level tasks again: every task is kept.
    _rebuild_tasks(unconstrain)
    if sqlite:
        _sqlite_triggers(SQLITE_COUNTER_TRIGGERS)
    op.drop_index("ix_lists_user_default", table_name="lists")
    op.drop_index("ix_lists_user_position", table_name="lists")
    op.drop_table("lists")
    # Not batch mode: SQLite (3.35 and later) drops a column in place, where a rebuild of
    # users would break the triggers on tasks that name it.
    op.drop_column("users", "seq")
