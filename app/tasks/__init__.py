"""The tasks resource."""

from .routes import (
    USER_ID_PARAMETER,
    TaskIdConverter,
    blp,
    register_responses,
    task_id_param_schema,
)

__all__ = [
    "USER_ID_PARAMETER",
    "TaskIdConverter",
    "blp",
    "register_responses",
    "task_id_param_schema",
]
