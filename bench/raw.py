"""The raw-driver references: for the list route (issue 6), one Flask route that checks
an HS256 token and reads a page of tasks with one plain psycopg2 SELECT; for a create
(issue 14), one that checks the token and runs one plain INSERT ... RETURNING.

No framework beyond Flask, no ORM, no schemas, no pool (a connection per thread, opened
once), and none of the service's production parts: no request log, metrics, rate
limits, CORS or security headers. It answers the same JSON body as the service's list
(without its pagination headers), and the create the same task JSON. bench/run.py serves
it with the same gunicorn settings as the service (``gunicorn -c gunicorn.conf.py --chdir
bench raw:app``) and reports the list and the create as ratios to it.
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
COLUMNS = (
    "id, user_id, title, description, completed, priority, due_date, tags, list_id, "
    "parent_id, position, completed_at, created_at, updated_at"
)
PAGE = f"""
    SELECT {COLUMNS}
    FROM tasks WHERE user_id = %s ORDER BY created_at DESC, id DESC LIMIT %s
"""
# In the user's default list, at a fixed place: the reference skips what the service does
# to place a task among its siblings.
INSERT = f"""
    INSERT INTO tasks (user_id, title, description, completed, list_id, position,
                       created_at, updated_at)
    VALUES (%s, %s, %s, %s, (SELECT id FROM lists WHERE user_id = %s AND is_default), 'a0',
            now(), now()) RETURNING {COLUMNS}
"""
PRIORITIES = ("low", "medium", "high")
_local = threading.local()


def _cursor() -> Any:
    conn = getattr(_local, "conn", None)
    if conn is None or conn.closed:
        conn = _local.conn = psycopg2.connect(DSN, options="-c timezone=UTC")
        conn.autocommit = True
    return conn.cursor()


def _stamp(value: Any) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _task(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "id": r[0],
        "user_id": r[1],
        "title": r[2],
        "description": r[3],
        "completed": r[4],
        "priority": PRIORITIES[r[5]],
        "due_date": _stamp(r[6]),
        "tags": r[7],
        "list_id": r[8],
        "parent_id": r[9],
        "position": r[10],
        "completed_at": _stamp(r[11]),
        "created_at": _stamp(r[12]),
        "updated_at": _stamp(r[13]),
    }


def _user(user_id: str) -> bool:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    try:
        claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    except jwt.PyJWTError:
        return False
    return scheme.lower() == "bearer" and claims.get("sub") == user_id


@app.get("/")
def ready() -> str:
    return "ok"


@app.get("/api/<user_id>/tasks")
def tasks(user_id: str) -> Response | tuple[str, int]:
    if not _user(user_id):
        return "", 401
    page_size = request.args.get("page_size", 100, type=int)
    with _cursor() as cur:
        cur.execute(PAGE, (user_id, page_size))
        rows = cur.fetchall()
    return jsonify([_task(r) for r in rows])


@app.post("/api/<user_id>/tasks")
def create(user_id: str) -> tuple[Response | str, int]:
    if not _user(user_id):
        return "", 401
    body = request.get_json()
    with _cursor() as cur:
        values = (user_id, body["title"], body.get("description"), body.get("completed", False))
        cur.execute(INSERT, (*values, user_id))
        row = cur.fetchone()
    return jsonify(_task(row)), 201
