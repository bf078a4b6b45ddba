"""Migrations: empty -> head -> base -> head, on a database of the test's own.

Never the session ``app`` fixture's database: on SQLite a temporary file, on
PostgreSQL a fresh ``<testdb>_migrations`` database created (and dropped) here.
"""

from __future__ import annotations

import flask_migrate
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask import Flask

from app.models import db

TASK_INDEXES = {
    "ix_tasks_user_created": ["user_id", "created_at", "id"],
    "ix_tasks_user_updated": ["user_id", "updated_at", "id"],
    "ix_tasks_user_title": ["user_id", "title", "id"],
    "ix_tasks_user_completed_created": ["user_id", "completed", "created_at", "id"],
    "ix_tasks_user_completed_updated": ["user_id", "completed", "updated_at", "id"],
    "ix_tasks_user_completed_title": ["user_id", "completed", "title", "id"],
    "ix_tasks_user_priority": ["user_id", "priority", "id"],
    "ix_tasks_user_due": ["user_id", "due_date", "id"],
    "ix_tasks_user_list_position": ["user_id", "list_id", "position", "id"],
    "ix_tasks_user_list_parent": ["user_id", "list_id", "parent_id", "position", "id"],
    "ix_tasks_user_parent_position": ["user_id", "parent_id", "position", "id"],
    "ix_tasks_user_seq": ["user_id", "seq", "id"],
}
# Made by migration 0003 on PostgreSQL only (NULLS LAST, pg_trgm).
POSTGRESQL_ONLY_INDEXES = {
    "ix_tasks_user_due_desc",
    "ix_tasks_title_trgm",
    "ix_tasks_description_trgm",
}


def _migrate(command: str, revision: str = "head") -> None:
    """Run ``flask db upgrade``/``downgrade``, then start over with fresh connections.

    A pooled SQLite connection that was idle during the DDL can answer ``PRAGMA
    index_list`` from its stale in-memory schema (seen here: no indexes after a
    re-upgrade), so reflection must not reuse connections from before the change.
    """
    getattr(flask_migrate, command)(revision=revision)
    db.engine.dispose()


def _tables(app: Flask) -> set[str]:
    return set(sa.inspect(db.engine).get_table_names())


def _schema_diff(app: Flask) -> list:
    """What ``flask db check`` compares: the models against the migrated schema."""
    options = app.extensions["migrate"].configure_args
    with db.engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "compare_type": options.get("compare_type", True),
                "include_object": options["include_object"],
            },
        )
        return compare_metadata(context, db.metadata)


def _check_head_schema(app: Flask) -> None:
    inspector = sa.inspect(db.engine)
    tables = {"users", "lists", "tasks", "task_tags", "idempotency_keys", "deletions"}
    tables.add("alembic_version")
    assert tables <= set(inspector.get_table_names())
    postgresql = db.engine.dialect.name == "postgresql"

    indexes = {ix["name"]: ix["column_names"] for ix in inspector.get_indexes("tasks")}
    plain = {name: columns for name, columns in indexes.items() if name in TASK_INDEXES}
    assert plain == TASK_INDEXES
    if postgresql:
        with db.engine.connect() as conn:
            names = conn.execute(
                sa.text("SELECT indexname FROM pg_indexes WHERE tablename = 'tasks'")
            )
            assert POSTGRESQL_ONLY_INDEXES <= set(names.scalars())

    assert inspector.get_pk_constraint("users")["constrained_columns"] == ["id"]
    # Keyed by user on PostgreSQL; SQLite keeps its auto-numbered INTEGER PRIMARY KEY,
    # with the unique (user_id, id) beside it.
    for table in ("tasks", "lists"):
        keys = [inspector.get_pk_constraint(table)["constrained_columns"]]
        keys += [uq["column_names"] for uq in inspector.get_unique_constraints(table)]
        assert keys == ([["user_id", "id"]] if postgresql else [["id"], ["user_id", "id"]])
    for table in ("task_tags", "idempotency_keys", "deletions"):
        assert inspector.get_pk_constraint(table)["constrained_columns"][0] == "user_id"
    # Every reference deletes in cascade: a user's lists and tasks, a list's tasks, a
    # task's subtasks.
    references = {
        (table, tuple(fk["constrained_columns"]), fk["referred_table"]): (
            fk["referred_columns"],
            (fk["options"].get("ondelete") or "").upper(),
        )
        for table in ("tasks", "lists")
        for fk in inspector.get_foreign_keys(table)
    }
    assert references == {
        ("tasks", ("user_id",), "users"): (["id"], "CASCADE"),
        ("tasks", ("user_id", "list_id"), "lists"): (["user_id", "id"], "CASCADE"),
        ("tasks", ("user_id", "parent_id"), "tasks"): (["user_id", "id"], "CASCADE"),
        ("lists", ("user_id",), "users"): (["id"], "CASCADE"),
    }

    columns = {c["name"]: c for c in inspector.get_columns("tasks")}
    assert set(columns) == {
        "id",
        "user_id",
        "title",
        "description",
        "completed",
        "created_at",
        "updated_at",
        "priority",
        "due_date",
        "tags",
        "completed_at",
        "version",
        "list_id",
        "parent_id",
        "position",
        "seq",
    }
    nullable = {name for name, c in columns.items() if c["nullable"]}
    assert nullable == {"description", "due_date", "completed_at", "parent_id"}


def _check_cascade(app: Flask) -> None:
    """Deleting a user deletes their lists and tasks, in the database itself (raw SQL)."""
    with db.engine.begin() as conn:
        conn.execute(
            sa.text("INSERT INTO users (id, created_at) VALUES (:id, :now)"),
            {"id": "cascade-user", "now": "2026-01-01 00:00:00+00:00"},
        )
        conn.execute(
            sa.text(
                "INSERT INTO lists (user_id, title, position, created_at, updated_at) "
                "VALUES (:u, 'l', 'a0', :now, :now)"
            ),
            {"u": "cascade-user", "now": "2026-01-01 00:00:00+00:00"},
        )
        conn.execute(
            sa.text(
                "INSERT INTO tasks (user_id, title, list_id, position, created_at, updated_at) "
                "VALUES (:u, 't', (SELECT id FROM lists WHERE user_id = :u), 'a0', :now, :now)"
            ),
            {"u": "cascade-user", "now": "2026-01-01 00:00:00+00:00"},
        )
        # `completed` has a server default: omitted above, it is false.
        completed = conn.execute(
            sa.text("SELECT completed FROM tasks WHERE user_id = 'cascade-user'")
        ).scalar_one()
        assert not completed
    with db.engine.begin() as conn:
        conn.execute(sa.text("DELETE FROM users WHERE id = 'cascade-user'"))
    with db.engine.connect() as conn:
        for table in ("tasks", "lists"):
            left = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE user_id = 'cascade-user'")
            ).scalar_one()
            assert left == 0, table


def test_upgrade_downgrade_upgrade(empty_app: Flask) -> None:
    app = empty_app
    with app.app_context():
        assert _tables(app) == set()  # really starts empty

        _migrate("upgrade")
        _check_head_schema(app)
        _check_cascade(app)
        assert _schema_diff(app) == []

        _migrate("downgrade", "base")
        assert _tables(app) <= {"alembic_version"}
        with db.engine.connect() as conn:
            if "alembic_version" in _tables(app):
                versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
                assert versions == []

        # The whole cycle again: downgrade left nothing behind that blocks a new upgrade.
        _migrate("upgrade")
        _check_head_schema(app)
        _check_cascade(app)
        assert _schema_diff(app) == []
        with db.engine.connect() as conn:
            (version,) = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        head = _head_revision(app)
        assert version == head

        _migrate("upgrade")  # already at head: a no-op, not an error
        assert _schema_diff(app) == []


def _head_revision(app: Flask) -> str:
    from alembic.script import ScriptDirectory

    config = app.extensions["migrate"].migrate.get_config()
    return ScriptDirectory.from_config(config).get_current_head()


def test_models_match_migrations_before_any_data(empty_app: Flask) -> None:
    """``flask db check``: autogenerate finds nothing to add, drop or alter."""
    with empty_app.app_context():
        _migrate("upgrade")
        diff = _schema_diff(empty_app)
        assert diff == [], f"models and migrations disagree: {diff}"
