"""JSON responses encoded with orjson.

Output is compact JSON, UTF-8, fields in insertion (schema) order. Flask's own rules
still apply to anything that is not plain JSON data (dates as HTTP dates, ``Decimal``,
``__html__``), through Flask's ``default``; and whatever orjson refuses (a lone
surrogate in a string, an integer beyond 64 bits) is encoded by the standard library
instead, never a 500.
"""

from __future__ import annotations

from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider

COMPACT = (",", ":")


class JSONProvider(DefaultJSONProvider):
    # Why orjson: encoding a page of tasks with the standard library was a measurable
    # share of the list's time (bench/README.md, "What we keep and why").
    sort_keys = False  # fields in schema order, as documented
    OPTIONS = (
        orjson.OPT_NON_STR_KEYS  # marshmallow error dicts use integer keys for list items
        | orjson.OPT_PASSTHROUGH_DATETIME  # datetimes as Flask writes them, via default
    )

    def dumps_bytes(self, obj: Any) -> bytes:
        """Compact JSON as UTF-8 bytes, ready for a response body."""
        try:
            return orjson.dumps(obj, default=self.default, option=self.OPTIONS)
        except orjson.JSONEncodeError:
            return super().dumps(obj, separators=COMPACT, ensure_ascii=True).encode()

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        # Flask's jsonify asks for compact separators; other options go to the stdlib.
        if not kwargs or kwargs == {"separators": COMPACT}:
            return self.dumps_bytes(obj).decode()
        return super().dumps(obj, **kwargs)
