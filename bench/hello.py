"""The reference: a bare Flask "hello" app, served by bench/run.py with the same
gunicorn config as the service (``gunicorn -c gunicorn.conf.py --chdir bench hello:app``)."""

from flask import Flask

app = Flask(__name__)


@app.get("/")
def hello() -> str:
    return "hello"
