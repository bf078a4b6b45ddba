"""Database models: the owners (``users``), their ``lists`` and their ``tasks``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    SmallInteger,
    String,
    Text,
    false,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeDecorator

# Largest id the database can hold (BIGINT on PostgreSQL, INTEGER on SQLite are both 64-bit).
MAX_ID = 2**63 - 1
TITLE_MAX = 200
DESCRIPTION_MAX = 1000
USER_ID_MAX = 255
TAG_MAX = 50
TAGS_MAX = 20
# Case folding can lengthen a tag ("ß" -> "ss"): room for the longest key.
TAG_KEY_MAX = 3 * TAG_MAX
IDEMPOTENCY_KEY_MAX = 255
LIST_TITLE_MAX = 100
LISTS_MAX = 500  # per user, the default list included
DEPTH_MAX = 4  # levels of tasks: a top-level task is level 1
POSITION_MAX = 64

naming_convention = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=naming_convention)


db = SQLAlchemy(model_class=Base)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp that is always timezone-aware UTC in Python.

    PostgreSQL stores ``timestamptz``; SQLite has no time zones, so values are
    stored as naive UTC and given their ``UTC`` tzinfo back when read.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[no-untyped-def]
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        if value.utcoffset():  # the PostgreSQL session runs in UTC, so this is rare
            return value.astimezone(UTC)
        return value


class utc_text(FunctionElement[str]):
    """A ``UTCDateTime`` column as the API writes it, ``2026-11-26T17:38:00.123456Z``,
    formatted by the database."""

    # Why in SQL: turning driver timestamps into datetimes and back into text was a
    # measurable share of a page's time (bench/README.md, "What we keep and why").
    type = String()
    name = "utc_text"
    inherit_cache = True


@compiles(utc_text, "postgresql")
def _utc_text_postgresql(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    column = compiler.process(element.clauses, **kw)
    return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"""


@compiles(utc_text, "sqlite")
def _utc_text_sqlite(element: utc_text, compiler: SQLCompiler, **kw: Any) -> str:
    # UTCDateTime stores SQLite timestamps as naive UTC text, "YYYY-MM-DD HH:MM:SS.ffffff".
    column = compiler.process(element.clauses, **kw)
    return f"replace({column}, ' ', 'T') || 'Z'"


# 64-bit ids on PostgreSQL; on SQLite only "INTEGER PRIMARY KEY" is the auto-numbered rowid.
TaskId = BigInteger().with_variant(Integer(), "sqlite")
# Manual order: keys compared byte by byte (SQLite's default; PostgreSQL needs "C", never
# the database's locale).
Position = String(POSITION_MAX).with_variant(String(POSITION_MAX, collation="C"), "postgresql")


class User(db.Model):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(USER_ID_MAX), primary_key=True)
    email: Mapped[str | None] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # Kept exact by database triggers on tasks (migration 0002), never by the app:
    # the list's total is then one row read, whatever the number of tasks.
    task_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    completed_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Bumped by every write of the user, first thing in its transaction: the row lock it
    # takes puts a user's writes one after another (migration 0004).
    seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"<User {self.id!r}>"


# Priorities as stored: a rank, so that sorting by priority is an index scan.
PRIORITIES = ("low", "medium", "high")
DEFAULT_PRIORITY = PRIORITIES.index("medium")
# JSON on SQLite (text), JSONB on PostgreSQL.
JSONList = JSON().with_variant(JSONB(), "postgresql")


class TaskList(db.Model):
    """A list of tasks. Every user has one default list (``is_default``)."""

    __tablename__ = "lists"

    user_id: Mapped[str] = mapped_column(
        String(USER_ID_MAX), ForeignKey("users.id", ondelete="CASCADE")
    )
    # Like tasks' ids: PostgreSQL's sequence, SQLite's INTEGER PRIMARY KEY AUTOINCREMENT.
    id: Mapped[int] = mapped_column(TaskId, autoincrement=True)
    title: Mapped[str] = mapped_column(String(LIST_TITLE_MAX))
    color: Mapped[str | None] = mapped_column(String(7))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    position: Mapped[str] = mapped_column(Position)
    # The list's tasks that are not completed: kept exact by triggers on tasks (migration
    # 0004, 0006), which also bump the version (the ETag) and seq when it changes.
    open_count: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The user's write counter as the write that last changed the list made it (the
    # changes feed, migration 0005).
    seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "id"),
        Index("ix_lists_user_position", "user_id", "position", "id"),
        Index("ix_lists_user_seq", "user_id", "seq", "id"),
        # One default list per user.
        Index(
            "ix_lists_user_default",
            "user_id",
            unique=True,
            sqlite_where=text("is_default"),
            postgresql_where=text("is_default"),
        ),
    )

    def __repr__(self) -> str:
        return f"<TaskList {self.id} of {self.user_id!r}>"


class Task(db.Model):
    __tablename__ = "tasks"

    user_id: Mapped[str] = mapped_column(
        String(USER_ID_MAX), ForeignKey("users.id", ondelete="CASCADE")
    )
    # Given by the database, never reused: PostgreSQL's sequence; on SQLite the table's
    # own INTEGER PRIMARY KEY AUTOINCREMENT (migration 0003).
    id: Mapped[int] = mapped_column(TaskId, autoincrement=True)
    title: Mapped[str] = mapped_column(String(TITLE_MAX))
    description: Mapped[str | None] = mapped_column(String(DESCRIPTION_MAX))
    completed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    priority: Mapped[int] = mapped_column(
        SmallInteger, default=DEFAULT_PRIORITY, server_default=str(DEFAULT_PRIORITY)
    )
    due_date: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # As sent (trimmed), in order; task_tags holds their case-folded keys for filtering.
    tags: Mapped[list[str]] = mapped_column(JSONList, default=list, server_default="[]")
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Bumped by every write that changes the task: its ETag.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    list_id: Mapped[int] = mapped_column(TaskId)
    # Its parent task (in the same list), or None at the top level.
    parent_id: Mapped[int | None] = mapped_column(TaskId)
    # Its place among its siblings (same list, same parent).
    position: Mapped[str] = mapped_column(Position)
    # The user's write counter as the write that last changed the task made it (the
    # changes feed, migration 0005).
    seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")

    # One index per list order: (owner[, status], sort key, id). The id makes the
    # tie-break part of the index, so a page is an index range scan with no sort;
    # PostgreSQL scans them backwards for order=desc.
    __table_args__ = (
        PrimaryKeyConstraint("user_id", "id"),
        Index("ix_tasks_user_created", "user_id", "created_at", "id"),
        Index("ix_tasks_user_updated", "user_id", "updated_at", "id"),
        Index("ix_tasks_user_title", "user_id", "title", "id"),
        Index("ix_tasks_user_completed_created", "user_id", "completed", "created_at", "id"),
        Index("ix_tasks_user_completed_updated", "user_id", "completed", "updated_at", "id"),
        Index("ix_tasks_user_completed_title", "user_id", "completed", "title", "id"),
        Index("ix_tasks_user_priority", "user_id", "priority", "id"),
        # Due dates ascending, nulls last (PostgreSQL's default for ASC)...
        Index("ix_tasks_user_due", "user_id", "due_date", "id"),
        # PostgreSQL also has ix_tasks_user_due_desc (due dates descending, nulls still
        # last) and pg_trgm indexes for q: see NOT_IN_MODELS.
        # A list in its manual order; a list's level (parent_id, or none) in order; a
        # task's subtasks in order (and the tree's walks from parent to children).
        Index("ix_tasks_user_list_position", "user_id", "list_id", "position", "id"),
        Index("ix_tasks_user_list_parent", "user_id", "list_id", "parent_id", "position", "id"),
        Index("ix_tasks_user_parent_position", "user_id", "parent_id", "position", "id"),
        Index("ix_tasks_user_seq", "user_id", "seq", "id"),
        ForeignKeyConstraint(
            ["user_id", "list_id"], ["lists.user_id", "lists.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["user_id", "parent_id"], ["tasks.user_id", "tasks.id"], ondelete="CASCADE"
        ),
    )

    def __repr__(self) -> str:
        return f"<Task {self.id} of {self.user_id!r}>"


class TaskTag(db.Model):
    """A task's tags as case-folded keys: the tag filter is a lookup of this primary key."""

    __tablename__ = "task_tags"

    user_id: Mapped[str] = mapped_column(String(USER_ID_MAX))
    tag: Mapped[str] = mapped_column(String(TAG_KEY_MAX))
    task_id: Mapped[int] = mapped_column(TaskId)

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "tag", "task_id"),
        ForeignKeyConstraint(
            ["user_id", "task_id"], ["tasks.user_id", "tasks.id"], ondelete="CASCADE"
        ),
        Index("ix_task_tags_user_task", "user_id", "task_id"),
    )


class Deletion(db.Model):
    """A deleted task or list, remembered for the changes feed: written by triggers on
    tasks and lists (migration 0005) whatever deletes them, removed by the service after
    CHANGES_RETENTION_DAYS."""

    __tablename__ = "deletions"

    user_id: Mapped[str] = mapped_column(String(USER_ID_MAX))
    kind: Mapped[int] = mapped_column(SmallInteger)  # 1 a list, 2 a task (app/changes)
    id: Mapped[int] = mapped_column(TaskId)
    seq: Mapped[int] = mapped_column(BigInteger)  # the deleting write's
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "kind", "id"),
        Index("ix_deletions_user_seq", "user_id", "seq", "kind", "id"),
        Index("ix_deletions_deleted_at", "deleted_at"),
    )


class IdempotencyKey(db.Model):
    """A create's Idempotency-Key (of a task or a list: one key space per user): claimed by
    inserting this row (the primary key decides between concurrent duplicates), then
    holding the first response for replays."""

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(
        String(USER_ID_MAX), ForeignKey("users.id", ondelete="CASCADE")
    )
    key: Mapped[str] = mapped_column(String(IDEMPOTENCY_KEY_MAX))
    request_hash: Mapped[str] = mapped_column(String(64))
    resource_id: Mapped[int | None] = mapped_column(TaskId)  # what the create made
    response: Mapped[str | None] = mapped_column(Text)  # the first response's body
    etag: Mapped[str | None] = mapped_column(String(100))  # and its ETag
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        PrimaryKeyConstraint("user_id", "key"),
        # Expired keys are found in created_at order, a bounded batch at a time.
        Index("ix_idempotency_keys_created", "created_at"),
    )


# What migrations 0003 and 0004 make on one database only, left out of the comparison of
# the models with the database (``flask db check``): on PostgreSQL, indexes SQLite cannot
# have (NULLS LAST, pg_trgm); on SQLite, the unique keys beside the single-column primary
# keys (SQLite numbers only a lone INTEGER PRIMARY KEY).
NOT_IN_MODELS = frozenset(
    {
        "ix_tasks_user_due_desc",
        "ix_tasks_title_trgm",
        "ix_tasks_description_trgm",
        "uq_tasks_user_id_id",
        "uq_lists_user_id_id",
    }
)


def compared_by_autogenerate(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Alembic's ``include_object``: what the models are compared with."""
    return name not in NOT_IN_MODELS
