"""Root conftest: eventlet first, as nameko requires, and psycopg made cooperative.

PSYCOPG_WAIT_FUNC must be in the environment before psycopg is imported (STACK-NOTES:
the C wait function blocks the hub); monkey-patching must happen before anything
imports socket or threading, or plain pytest hangs.
"""
import os

os.environ.setdefault("PSYCOPG_WAIT_FUNC", "wait_select")

import eventlet  # noqa: E402

eventlet.monkey_patch()

pytest_plugins = ["tests.fixtures"]
