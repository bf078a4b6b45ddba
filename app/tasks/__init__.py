"""The tasks resource."""

from .routes import TaskIdConverter, USER_ID_PARAMETER, blp, task_id_param_schema

__all__ = ["USER_ID_PARAMETER", "TaskIdConverter", "blp", "task_id_param_schema"]
