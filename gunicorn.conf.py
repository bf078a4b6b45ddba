"""gunicorn settings: ``gunicorn -c gunicorn.conf.py wsgi:app``.

Defaults suit a 2-core machine; every value can be overridden from the environment.
"""

import os

# HOST defaults to all interfaces (containers); the local quickstart sets 127.0.0.1.
bind = f"{os.environ.get('HOST', '0.0.0.0')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# Threads overlap the database round trips of one worker; keep DB_POOL_SIZE >= threads.
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so slow leaks cannot grow without bound.
max_requests = 1000
max_requests_jitter = 100
# Import the app once in the master: a configuration error stops the start with one line
# and exit status 1, and workers share the loaded code.
preload_app = True
accesslog = "-"
# Trust X-Forwarded-* only from these proxy addresses (comma-separated).
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
