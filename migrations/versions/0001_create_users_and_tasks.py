"""Create users and tasks.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# (name, columns): one index per list query (owner[, status], sort key, id).
TASK_INDEXES = [
    ("ix_tasks_user_created", ["user_id", "created_at", "id"]),
    ("ix_tasks_user_updated", ["user_id", "updated_at", "id"]),
    ("ix_tasks_user_title", ["user_id", "title", "id"]),
    ("ix_tasks_user_completed_created", ["user_id", "completed", "created_at", "id"]),
    ("ix_tasks_user_completed_updated", ["user_id", "completed", "updated_at", "id"]),
    ("ix_tasks_user_completed_title", ["user_id", "completed", "title", "id"]),
]


def upgrade():
    op.create_table(
        "users",
        sa.Column("id", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("name", sa.String(length=255), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
    )
    op.create_table(
        "tasks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=255), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("description", sa.String(length=1000), nullable=True),
        sa.Column("completed", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_tasks_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tasks")),
    )
    for name, columns in TASK_INDEXES:
        op.create_index(name, "tasks", columns, unique=False)


def downgrade():
    for name, _ in reversed(TASK_INDEXES):
        op.drop_index(name, table_name="tasks")
    op.drop_table("tasks")
    op.drop_table("users")
