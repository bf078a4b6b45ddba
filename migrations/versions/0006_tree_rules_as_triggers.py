"""The tree rules and the counters as database triggers, for every write.

- the tree rules: completing a task completes its open subtasks, reopening one (or an open
  task arriving under a completed one) reopens its completed parent, a task moved to
  another list takes its subtasks along. Until now the service ran them as statements of
  its own after each write; as row triggers they are part of the writing statement, so a
  write can be one statement (docs/sync.md, "What the service does").
- the counters (users.task_count and completed_count, lists.open_count with the list's
  version and seq): on PostgreSQL one statement trigger per insert and per delete instead
  of migration 0002's and 0004's one per counter, and a row trigger for updates that
  change a completion or a list; on SQLite, 0004's open_count triggers stamping the list
  with the writing row's seq.

Nothing in the data changes: the rules held before, kept by the service.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

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


# What migration 0005 left (for the downgrade): 0004's open_count triggers, stamping the
# list with the user's seq.
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
PG_OPEN_COUNT_EVENTS = {
    "tasks_open_count_insert": "AFTER INSERT ON tasks REFERENCING NEW TABLE AS new_rows",
    "tasks_open_count_delete": "AFTER DELETE ON tasks REFERENCING OLD TABLE AS old_rows",
    "tasks_open_count_update": (
        "AFTER UPDATE ON tasks REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows"
    ),
}


def _sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


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
    if _sqlite():
        for name in SQLITE_OPEN_COUNT_TRIGGERS:
            op.execute(f"DROP TRIGGER {name}")
        for group in (SQLITE_OPEN_COUNT_TRIGGERS, SQLITE_TREE_TRIGGERS):
            for statement in group.values():
                op.execute(statement)
        return
    for name in PG_OPEN_COUNT_EVENTS:
        op.execute(f"DROP TRIGGER {name} ON tasks")
        op.execute(f"DROP FUNCTION {name}()")
    _pg_triggers()


def downgrade():
    if _sqlite():
        for name in (*SQLITE_OPEN_COUNT_TRIGGERS, *SQLITE_TREE_TRIGGERS):
            op.execute(f"DROP TRIGGER {name}")
        for statement in SQLITE_OPEN_COUNT.values():
            op.execute(statement.format(stamp=f", {SQLITE_STAMP}"))
        return
    _drop_pg_triggers()
    for name, body in PG_OPEN_COUNT.items():
        op.execute(
            f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ "
            f"BEGIN {body.format(stamp=OPEN_COUNT_STAMP)} RETURN NULL; END $$"
        )
        op.execute(
            f"CREATE TRIGGER {name} {PG_OPEN_COUNT_EVENTS[name]} "
            f"FOR EACH STATEMENT EXECUTE FUNCTION {name}()"
        )
