# 民情E点通 — the two commands a new user needs: `make run` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
# psycopg's C wait function blocks eventlet's hub (STACK-NOTES.md): every process needs this.
export PSYCOPG_WAIT_FUNC := wait_select

.PHONY: install system-packages run stop status test unit lint bench clean partner verify

$(VENV)/.installed: requirements.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements.txt
	touch $@

install: $(VENV)/.installed  ## the virtualenv with every pinned dependency

run: install system-packages  ## install, provision and start everything; prints the URL and demo logins
	$(PY) -W ignore -m tools.stack up

stop:  ## stop the services and the S3 server that `make run` started; keeps every piece of state
	$(PY) -W ignore -m tools.stack down

status:
	$(PY) -W ignore -m tools.stack status

# Debian's PostGIS for dispatch's spatial queries (no server restart needed), shellcheck
# for the container entrypoint, and
# Debian's prometheus: promtool checks the alert rules, and a real Prometheus scrapes the
# services in the tests. Installing it may start a daemon on :9090; the tests start their own.
system-packages:
	@test -f /usr/share/postgresql/15/extension/postgis.control || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  postgresql-15-postgis-3 >/dev/null; }
	@command -v shellcheck >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	  shellcheck >/dev/null; }
	@command -v promtool >/dev/null || { apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
	  >/dev/null && { pkill -x prometheus || true; }; }

# The AsyncAPI parser (npm, pinned by the lock file), for the contract test; offline after.
ASYNCAPI_TOOLS := tools/asyncapi/node_modules/.installed
$(ASYNCAPI_TOOLS): tools/asyncapi/package.json tools/asyncapi/package-lock.json
	npm ci --prefix tools/asyncapi --no-audit --no-fund --silent
	touch $@

test: install system-packages lint $(ASYNCAPI_TOOLS)  ## the whole suite: unit, integration, end-to-end, deploy checks
	$(PY) -m pytest

unit: install  ## only the fast tests that need no server
	$(PY) -m pytest -m "not integration" services/*/tests gateway/tests minqing_kernel/tests

lint: install
	$(VENV)/bin/ruff check .

partner: install  ## a partner platform's RabbitMQ user in AMQP_URI's vhost: make partner NAME=ping_an_365
	@test -n "$(NAME)" || { echo "usage: make partner NAME=<name> [PARTNER_PASSWORD=...]"; exit 2; }
	$(PY) -W ignore -m tools.partners add $(NAME)

bench: install  ## figures for report throughput and latency on an isolated stack
	$(PY) -W ignore -m bench.report_load

.PHONY: api-key
api-key: install  ## an Open311 partner's API key: make api-key PARTNER=partner-demo NAME="what for"
	@test -n "$(PARTNER)" -a -n "$(NAME)" || { echo 'usage: make api-key PARTNER=<partner> NAME="<what for>"'; exit 2; }
	$(PY) -W ignore -m services.identity.api_keys issue "$(PARTNER)" "$(NAME)"

verify:  ## check a case's audit trail: make verify CASE=<case-id> (exit 1 names the first bad entry)
	@test -n "$(CASE)" || { echo "usage: make verify CASE=<case-id>"; exit 2; }
	$(PY) -W ignore -m services.dispatch.verify $(CASE)

# One installation's state goes together (tools/installation.py): its database schemas,
# the object store's data, the simulator's state and the secrets, all in .run/.
clean: install  ## stop and remove the installation: its database schemas and .run/ (photos, secrets)
	$(PY) -W ignore -m tools.stack clean
