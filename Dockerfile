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
COPY wsgi.py gunicorn.conf.py ./
RUN mkdir -p /srv/instance && chown app:app /srv/instance
USER app
EXPOSE 8000
# Migrations are a separate step, run once per release:
#   docker run --rm -e DATABASE_URL -e BETTER_AUTH_SECRET tasks-api flask db upgrade
CMD ["gunicorn", "-c", "gunicorn.conf.py", "wsgi:app"]
