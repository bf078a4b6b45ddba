"""The raw-driver reference for the list route, as issue 6 describes it: one Flask route
that checks an HS256 token and reads a page of 20 tasks with one plain psycopg2 SELECT.

No framework beyond Flask, no ORM, no schemas, no pool (a connection per thread, opened
once), and none of the service's production parts: no request log, metrics, rate
limits, CORS or security headers. It answers the same JSON body as the service's list
(without its pagination headers). bench/run.py serves it with the same gunicorn
settings as the service (``gunicorn -c gunicorn.conf.py --chdir bench raw:app``) and
reports the list route as a ratio to it: "within 15 % of the raw-driver limit".
"""

from __future__ import annotations

import os
import threading
from typing import Any

import jwt
import psycopg2
from flask import Flask, Response, jsonify, request

app = Flask(__name__)
SECRET = os.environ["BETTER_AUTH_SECRET"]
DSN = os.environ["DATABASE_URL"]
PAGE = """
    SELECT id, user_id, title, description, completed, created_at, updated_at
    FROM tasks WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s
"""
_local = threading.local()


def _cursor() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg2.connect(DSN, options="-c timezone=UTC")
        conn.autocommit = True
    return conn.cursor()


def _stamp(value: Any) -> str:
    return value.isoformat().replace("+00:00", "Z")


@app.get("/")
def ready() -> str:
    return "ok"


@app.get("/api/<user_id>/tasks")
def tasks(user_id: str) -> Response | tuple[str, int]:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return "", 401
    if scheme.lower() != "bearer" or claims.get("sub") != user_id:
        return "", 403
    page_size = request.args.get("page_size", 100, type=int)
    with _cursor() as cur:
        cur.execute(PAGE, (user_id, page_size))
        rows = cur.fetchall()
    return jsonify(
        [
            {
                "id": r[0],
                "user_id": r[1],
                "title": r[2],
                "description": r[3],
                "completed": r[4],
                "created_at": _stamp(r[5]),
                "updated_at": _stamp(r[6]),
            }
            for r in rows
        ]
    )
