"""Page metadata for a paginated list: ``X-Pagination`` (JSON) and ``Link`` (RFC 8288)."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from flask import request
from flask_smorest.pagination import PaginationMetadataSchema

PAGINATION_HEADERS = {
    "X-Pagination": {
        "description": "The page's metadata, a JSON object (flask-smorest's PaginationMetadata): "
        "total, total_pages, first_page, last_page and page always, previous_page and "
        "next_page where such a page exists.",
        "content": {"application/json": {"schema": PaginationMetadataSchema}},
    },
    "Link": {
        "description": "RFC 8288 links: first and last, and next/prev where such a page exists.",
        "schema": {"type": "string"},
    },
}


def pagination_headers(total: int, page: int, page_size: int) -> dict[str, str]:
    """``X-Pagination`` and ``Link`` (absolute URLs, every other query parameter kept as
    sent) for one page."""
    total_pages = -(-total // page_size)
    last_page = max(total_pages, 1)
    meta: dict[str, int] = {
        "total": total,
        "total_pages": total_pages,
        "first_page": 1,
        "last_page": last_page,
        "page": page,
    }
    if page > 1:
        meta["previous_page"] = min(page - 1, last_page)
    if page < last_page:
        meta["next_page"] = page + 1
    others = [(k, v) for k, v in request.args.items(multi=True) if k != "page"]
    links = {
        "first": 1,
        "last": last_page,
        "prev": meta.get("previous_page"),
        "next": meta.get("next_page"),
    }
    link = ", ".join(
        f'<{request.base_url}?{urlencode([*others, ("page", number)])}>; rel="{rel}"'
        for rel, number in links.items()
        if number is not None
    )
    return {"X-Pagination": json.dumps(meta), "Link": link}
