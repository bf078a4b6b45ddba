"""Lists, subtasks and manual order; a per-user write counter.

- users.seq: bumped by every write of the user, in its transaction (the row lock it takes
  puts a user's writes one after another: positions are computed on a sibling set nobody
  else is changing, and the tree rules see a tree nobody else is changing); tasks.seq and
  lists.seq: the counter as the write that last changed the row made it (the changes
  feed, migration 0005).
- lists, keyed by (user_id, id) on PostgreSQL (on SQLite, like tasks, its auto-numbered
  INTEGER PRIMARY KEY with a unique (user_id, id) beside it); one default list per user;
  open_count kept exact by triggers on tasks, which also bump the list's version (its
  ETag) and seq when it changes.
- tasks.list_id, tasks.parent_id (both foreign keys that include user_id, deleting in
  cascade: deleting a task deletes its subtree) and tasks.position (compared byte by
  byte: COLLATE "C" on PostgreSQL, SQLite's default). Every user who has tasks gets a
  default list "Tasks"; their tasks go there, at the top level, in the order they were
  created (oldest first, ids breaking ties).
- the tree rules as triggers on tasks (below).
- idempotency_keys: task_id becomes resource_id (a key may make a task or a list) and the
  first response's ETag is kept with its body.
- indexes for a list in manual order, a list's level, a task's subtasks and the feed.

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
    ("ix_tasks_user_seq", ["user_id", "seq", "id"]),
]
# The user's write counter as the write that last changed the row made it (the changes
# feed, migration 0005). Rows made before this migration have 0.
def _seq() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("seq", sa.BigInteger(), server_default="0", nullable=False)

DEFAULT_TITLE = "Tasks"

# The database keeps, for every write whoever makes it:
# - open_count, the list's tasks that are not completed (and the list's version and seq
#   when it changes);
# - the tree rules: completing a task completes its open subtasks, reopening one (or an
#   open task arriving under a completed one) reopens its completed parent, a task moved to
#   another list takes its subtasks along. Each rule is a row trigger that changes the
#   task's children (or its parent), whose own triggers carry it on down (or up) the tree:
#   the whole cascade is part of the writing statement, in its transaction, and a write
#   that changes no completion, list or parent runs none of it. Every task a rule changes
#   gets the write's moment (updated_at, completed_at), a new version and the write's seq.
# Deleting a task deletes its subtree by the foreign key's ON DELETE CASCADE.
#
# Updates use row triggers with a WHEN condition (on both databases), so that an update
# of a title costs nothing here.
TREE_RULES = {
    # (name, when): the rule's statement, in terms of the row that fired it (NEW)
    "complete_below": """
        UPDATE tasks SET completed = TRUE, completed_at = NEW.updated_at,
                         updated_at = NEW.updated_at, version = version + 1, seq = NEW.seq
         WHERE user_id = NEW.user_id AND parent_id = NEW.id AND NOT completed;
    """,
    "reopen_above": """
        UPDATE tasks SET completed = FALSE, completed_at = NULL,
                         updated_at = NEW.updated_at, version = version + 1, seq = NEW.seq
         WHERE user_id = NEW.user_id AND id = NEW.parent_id AND completed;
    """,
    "follow_list": """
        UPDATE tasks SET list_id = NEW.list_id,
                         updated_at = NEW.updated_at, version = version + 1, seq = NEW.seq
         WHERE user_id = NEW.user_id AND parent_id = NEW.id;
    """,
}
# trigger name -> (function, event, condition), the same on both databases
ROW_TRIGGERS = {
    "tasks_complete_below": (
        "complete_below",
        "AFTER UPDATE OF completed ON tasks",
        "NEW.completed AND NOT OLD.completed",
    ),
    "tasks_reopen_above": (
        "reopen_above",
        "AFTER UPDATE OF completed, parent_id ON tasks",
        "NOT NEW.completed AND NEW.parent_id IS NOT NULL"
        " AND (OLD.completed OR OLD.parent_id IS NULL OR OLD.parent_id <> NEW.parent_id)",
    ),
    "tasks_reopen_above_insert": (
        "reopen_above",
        "AFTER INSERT ON tasks",
        "NOT NEW.completed AND NEW.parent_id IS NOT NULL",
    ),
    "tasks_follow_list": (
        "follow_list",
        "AFTER UPDATE OF list_id ON tasks",
        "NEW.list_id <> OLD.list_id",
    ),
}
# A list's open_count changes: a change of the list.
LIST_CHANGED = "version = version + 1, seq = {seq}"
# Deleted rows carry an older write's seq: the deleting write's is the user's (gone while
# an operator's delete of the user cascades: the list, about to go too, keeps its own).
USER_SEQ = "coalesce((SELECT u.seq FROM users AS u WHERE u.id = lists.user_id), lists.seq)"
OPEN_COUNT_UPDATE = """
        UPDATE lists SET open_count = open_count - 1, {changed}
         WHERE user_id = OLD.user_id AND id = OLD.list_id AND NOT OLD.completed;
        UPDATE lists SET open_count = open_count + 1, {changed}
         WHERE user_id = NEW.user_id AND id = NEW.list_id AND NOT NEW.completed;
""".format(changed=LIST_CHANGED.format(seq="NEW.seq"))
COMPLETED_COUNT_UPDATE = """
        UPDATE users SET completed_count = completed_count
                         + CASE WHEN NEW.completed THEN 1 ELSE -1 END
         WHERE id = NEW.user_id AND NEW.completed <> OLD.completed;
"""
COUNTS_UPDATE = (
    "AFTER UPDATE OF completed, list_id ON tasks",
    "NEW.completed <> OLD.completed OR NEW.list_id <> OLD.list_id",
)
# PostgreSQL, inserts and deletes: one statement trigger each, over its transition
# table, keeps both the users' counters (taking over migration 0002's) and open_count:
# one query of the transition table, then an update per user and list whose plan the
# function keeps (a bulk statement updates each row once, not once per task).
# Why one loop for both counters: each transition-table trigger costs every write
# (bench/README.md, "What we keep and why").
PG_COUNTS_LOOP = """
    FOR r IN SELECT user_id, list_id, count(*) AS n,
                    count(*) FILTER (WHERE completed) AS done, max(seq) AS seq
               FROM {rows} GROUP BY user_id, list_id LOOP
        UPDATE users SET task_count = task_count {sign} r.n,
                         completed_count = completed_count {sign} r.done
         WHERE id = r.user_id;
        IF r.n > r.done THEN
            UPDATE lists SET open_count = open_count {sign} (r.n - r.done), {changed}
             WHERE user_id = r.user_id AND id = r.list_id;
        END IF;
    END LOOP;
"""
PG_COUNTS = {
    "tasks_counts_insert": (
        "AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows",
        PG_COUNTS_LOOP.format(rows="new_rows", sign="+", changed=LIST_CHANGED.format(seq="r.seq")),
    ),
    "tasks_counts_delete": (
        "AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows",
        PG_COUNTS_LOOP.format(rows="old_rows", sign="-", changed=LIST_CHANGED.format(seq=USER_SEQ)),
    ),
}
# Migration 0002's triggers, which those and tasks_counts_update replace.
PG_0002_TRIGGERS = {
    "tasks_counters_insert": "AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows",
    "tasks_counters_delete": "AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows",
    "tasks_counters_update": (
        "AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
}
SQLITE_OPEN_COUNT_TRIGGERS = {
    "tasks_open_count_insert": f"""
    CREATE TRIGGER tasks_open_count_insert AFTER INSERT ON tasks WHEN NOT NEW.completed BEGIN
        UPDATE lists SET open_count = open_count + 1, {LIST_CHANGED.format(seq="NEW.seq")}
         WHERE user_id = NEW.user_id AND id = NEW.list_id;
    END
    """,
    "tasks_open_count_delete": f"""
    CREATE TRIGGER tasks_open_count_delete AFTER DELETE ON tasks WHEN NOT OLD.completed BEGIN
        UPDATE lists SET open_count = open_count - 1, {LIST_CHANGED.format(seq=USER_SEQ)}
         WHERE user_id = OLD.user_id AND id = OLD.list_id;
    END
    """,
    "tasks_open_count_update": f"""
    CREATE TRIGGER tasks_open_count_update {COUNTS_UPDATE[0]} WHEN {COUNTS_UPDATE[1]} BEGIN
        {OPEN_COUNT_UPDATE}
    END
    """,
}
PG_ROW_FUNCTIONS = {
    **{f"tasks_{rule}": body for rule, body in TREE_RULES.items()},
    "tasks_counts_update": COMPLETED_COUNT_UPDATE + OPEN_COUNT_UPDATE,
}
PG_ROW_TRIGGERS = {
    **{name: (f"tasks_{rule}", event, when) for name, (rule, event, when) in ROW_TRIGGERS.items()},
    "tasks_counts_update": ("tasks_counts_update", *COUNTS_UPDATE),
}
SQLITE_TREE_TRIGGERS = {
    name: f"CREATE TRIGGER {name} {event} WHEN {condition} BEGIN {TREE_RULES[rule]} END"
    for name, (rule, event, condition) in ROW_TRIGGERS.items()
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


def _pg_function(name: str, body: str, declare: str = "") -> None:
    op.execute(
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
        f"{declare} BEGIN {body} RETURN NULL; END $$"
    )


def _pg_triggers() -> None:
    for name in PG_0002_TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON tasks")
    for name, (event, body) in PG_COUNTS.items():
        _pg_function(name, body, declare="DECLARE r record;")
        op.execute(f"CREATE TRIGGER {name} {event} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")
    for name, body in PG_ROW_FUNCTIONS.items():
        _pg_function(name, body)
    for name, (function, event, when) in PG_ROW_TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER {name} {event} FOR EACH ROW WHEN ({when}) "
            f"EXECUTE FUNCTION {function}()"
        )


def _drop_pg_triggers() -> None:
    for name in (*PG_COUNTS, *PG_ROW_TRIGGERS):
        op.execute(f"DROP TRIGGER {name} ON tasks")
    for name in (*PG_COUNTS, *PG_ROW_FUNCTIONS):
        op.execute(f"DROP FUNCTION {name}()")
    for name, event in PG_0002_TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {event} FOR EACH STATEMENT EXECUTE FUNCTION {name}()")


def upgrade():
    sqlite = _sqlite()
    bind = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None) if sqlite else datetime.now(UTC)

    with op.batch_alter_table("users") as batch:
        batch.add_column(_seq())

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
        _seq(),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name="fk_lists_user_id_users", ondelete="CASCADE"
        ),
        *keys,
        sqlite_autoincrement=True,
    )
    op.create_index("ix_lists_user_position", "lists", ["user_id", "position", "id"])
    op.create_index("ix_lists_user_seq", "lists", ["user_id", "seq", "id"])
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
        batch.add_column(_seq())

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
        _sqlite_triggers(SQLITE_COUNTER_TRIGGERS, SQLITE_OPEN_COUNT_TRIGGERS, SQLITE_TREE_TRIGGERS)
    else:
        _pg_triggers()

    with op.batch_alter_table("idempotency_keys") as batch:
        batch.alter_column("task_id", new_column_name="resource_id", existing_type=TaskId)
        batch.add_column(sa.Column("etag", sa.String(length=100), nullable=True))


def downgrade():
    sqlite = _sqlite()
    with op.batch_alter_table("idempotency_keys") as batch:
        batch.drop_column("etag")
        batch.alter_column("resource_id", new_column_name="task_id", existing_type=TaskId)
    if not sqlite:
        _drop_pg_triggers()
    for name, _ in reversed(TASK_INDEXES):
        op.drop_index(name, table_name="tasks")

    def unconstrain(batch) -> None:  # type: ignore[no-untyped-def]
        batch.drop_constraint("fk_tasks_user_id_tasks", type_="foreignkey")
        batch.drop_constraint("fk_tasks_user_id_lists", type_="foreignkey")
        batch.drop_column("seq")
        batch.drop_column("position")
        batch.drop_column("parent_id")
        batch.drop_column("list_id")

    # Subtasks become top-level tasks again: every task is kept.
    _rebuild_tasks(unconstrain)
    if sqlite:
        _sqlite_triggers(SQLITE_COUNTER_TRIGGERS)
    op.drop_index("ix_lists_user_default", table_name="lists")
    op.drop_index("ix_lists_user_seq", table_name="lists")
    op.drop_index("ix_lists_user_position", table_name="lists")
    op.drop_table("lists")
    # Not batch mode: SQLite (3.35 and later) drops a column in place, where a rebuild of
    # users would break the triggers on tasks that name it.
    op.drop_column("users", "seq")
