# syntax=docker/dockerfile:1
# Build stage: install the hash-locked dependencies into a virtualenv.
FROM python:3.11-slim AS build
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
RUN /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \
        --require-hashes -r /tmp/requirements.txt

# Runtime stage: the virtualenv and the code, nothing else; runs as a non-root user.
FROM python:3.11-slim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FLASK_APP=wsgi:app \
    PORT=8000
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /srv
COPY app ./app
COPY migrations ./migrations
COPY wsgi.py gunicorn.conf.py docker-entrypoint.sh ./
RUN mkdir -p /srv/instance && chown app:app /srv/instance
USER app
EXPOSE 8000
# Liveness only (no database): a database outage must not get healthy replicas killed.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"
# Migrations are a separate, switchable step, run once per release (never by every replica):
#   docker run --rm -e DATABASE_URL -e BETTER_AUTH_SECRET tasks-api flask db upgrade
# or start the container with RUN_MIGRATIONS=1 for a single-instance setup.
ENTRYPOINT ["/srv/docker-entrypoint.sh"]
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
