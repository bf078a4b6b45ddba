"""The changes feed."""

from .routes import blp
from .schemas import document

__all__ = ["blp", "document"]
