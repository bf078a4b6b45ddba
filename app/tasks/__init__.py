"""The tasks resource."""

from .routes import blp
from .schemas import TASK

__all__ = ["TASK", "blp"]
