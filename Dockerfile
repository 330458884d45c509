# syntax=docker/dockerfile:1
#
# authsvc container image.
#
#   docker build -t authsvc .
#   docker run --rm -p 8000:8000 -e AUTH_DATABASE_URL=postgresql+asyncpg://... authsvc
#
# Two stages: `builder` resolves the locked dependencies with uv into /app/.venv and installs
# the project and the consumer kit it verifies tokens with (editable, so the app finds
# alembic.ini and migrations/ next to its package);
# `runtime` is a clean slim image that only receives /app. The source tree and the virtualenv
# are owned by root and read-only for the service user; only /app/var (SQLite file, generated
# development keys) is writable.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ARG UV_VERSION=0.13.9

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/app/.venv

RUN pip install --no-cache-dir "uv==${UV_VERSION}"

WORKDIR /app

# Dependencies first: this layer is rebuilt only when the lock changes, not on every code edit.
# The consumer kit (kit/, distribution `authsvc-kit`) is a workspace member the service depends
# on: its metadata belongs to this layer, its code to the next.
COPY pyproject.toml uv.lock README.md ./
COPY kit/pyproject.toml kit/README.md ./kit/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace

COPY alembic.ini ./
COPY migrations ./migrations
COPY kit/src ./kit/src
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev

# --------------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001
ARG APP_GID=10001

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/app/.venv/bin:${PATH}" \
    AUTH_HOST=0.0.0.0 \
    AUTH_PORT=8000 \
    AUTH_KEYS_DIR=/app/var/keys

RUN groupadd --system --gid "${APP_GID}" authsvc \
    && useradd --system --uid "${APP_UID}" --gid authsvc --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin authsvc

WORKDIR /app

COPY --from=builder /app /app
COPY --chmod=0755 docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh

RUN mkdir -p /app/var/keys \
    && chown -R authsvc:authsvc /app/var \
    && chmod 0700 /app/var/keys

USER ${APP_UID}:${APP_GID}

# SQLite database and generated development signing keys live here; mount a volume to keep them.
VOLUME ["/app/var"]

EXPOSE 8000

# No curl in slim images: probe liveness with the interpreter that is already there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('AUTH_PORT', '8000'); sys.exit(0 if urllib.request.urlopen(f'http://127.0.0.1:{port}/health/live', timeout=4).status == 200 else 1)"]

ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["serve"]
