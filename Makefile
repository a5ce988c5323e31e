# 民情E点通 — the two commands a new user needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# psycopg's C wait function blocks eventlet's hub (STACK-NOTES.md): every process needs this.
export PSYCOPG_WAIT_FUNC := wait_select

.PHONY: install run stop status test unit lint bench clean

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed  ## the virtualenv with every pinned dependency

run: install  ## install, provision and start everything; prints the URL and demo logins
	$(PY) -W ignore -m tools.stack up

stop:  ## stop the services and the S3 server that `make run` started
	$(PY) -W ignore -m tools.stack down

status:
	$(PY) -W ignore -m tools.stack status

test: install lint  ## the whole suite: unit, integration and end-to-end against real servers
	$(PY) -m pytest

unit: install  ## only the fast tests that need no server
	$(PY) -m pytest -m "not integration" services/*/tests gateway/tests minqing_kernel/tests

lint: install
	$(VENV)/bin/ruff check .

bench: install  ## figures for report throughput and latency on an isolated stack
	$(PY) -W ignore -m bench.report_load

clean: stop
	rm -rf .run
