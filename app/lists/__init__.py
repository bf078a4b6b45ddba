"""The lists resource."""

from .routes import ListIdConverter, blp, list_id_param_schema
from .schemas import LIST

__all__ = ["LIST", "ListIdConverter", "blp", "list_id_param_schema"]
