#!/bin/sh
# The image's entrypoint: entrypoint.sh <gateway|identity|intake|dispatch|integration365|rewards|provision|pingan365-sim|sms-sim>
#
# First waits until the broker (AMQP_URI) and PostgreSQL (DB_URI) accept TCP
# connections, so a service started before them waits instead of crash-looping; gives
# up after WAIT_TIMEOUT_S seconds (default 120) with a non-zero exit. Then runs the
# service with nameko, or `python -m tools.stack provision` (migrations, reference
# data, broker topology, bucket).
#
# In a container every service listens on 0.0.0.0:8000 unless its *_WEB_ADDRESS is set.
# The table below must match tools/stack.py SERVICES (deploy/tests checks it).
set -eu

cd "${APP_DIR:-/app}"

usage() {
    echo "usage: entrypoint.sh <gateway|identity|intake|dispatch|integration365|rewards|provision|pingan365-sim|sms-sim>" >&2
    exit 64
}

log() {
    echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) entrypoint: $*" >&2
}

# host and port of a URI, one per line (the scheme's port if it names none)
host_port() {
    python - "$1" <<'PY'
import sys
from urllib.parse import urlsplit

url = urlsplit(sys.argv[1])
scheme = url.scheme.split("+")[0]
ports = {"amqp": 5672, "amqps": 5671, "postgresql": 5432, "postgres": 5432,
         "http": 80, "https": 443}
print(url.hostname or "")
print(url.port or ports.get(scheme, 0))
PY
}

tcp_open() {
    python - "$1" "$2" <<'PY'
import socket
import sys

try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=2).close()
except OSError as exc:
    print(exc, file=sys.stderr)
    sys.exit(1)
PY
}

# wait_for WHAT URI: all waits together are bounded by WAIT_TIMEOUT_S
wait_for() {
    what=$1
    hp=$(host_port "$2")
    host=$(echo "$hp" | sed -n 1p)
    port=$(echo "$hp" | sed -n 2p)
    if [ -z "$host" ]; then
        log "no host in the $what URI; not waiting for it"
        return 0
    fi
    log "waiting for $what at $host:$port (up to ${WAIT_TIMEOUT_S}s)"
    while ! err=$(tcp_open "$host" "$port" 2>&1); do
        now=$(date +%s)
        if [ "$now" -ge "$deadline" ]; then
            log "ERROR: $what at $host:$port not reachable after ${WAIT_TIMEOUT_S}s" \
                "(last error: $err); giving up"
            exit 69
        fi
        log "$what at $host:$port not reachable yet ($err); retrying in 2s"
        sleep 2
    done
    log "$what at $host:$port is accepting connections"
}

# run_service NAME MODULE:CLASS CONFIG WEB_ADDRESS_VAR NEEDS_DB
run_service() {
    name=$1 target=$2 config=$3 address_var=$4 needs_db=$5
    address=""
    eval "address=\${$address_var:-0.0.0.0:8000}"
    export "$address_var=$address"
    wait_for broker "$AMQP_URI"
    if [ "$needs_db" = yes ]; then
        wait_for database "$DB_URI"
    fi
    log "starting $name ($target) with $config, HTTP on $address"
    exec python -m nameko run --config "$config" "$target"
}

[ $# -eq 1 ] || usage

: "${WAIT_TIMEOUT_S:=120}"
: "${AMQP_URI:=amqp://guest:guest@127.0.0.1:5672/}"
: "${DB_URI:=postgresql+psycopg://postgres@127.0.0.1:5432/minqing}"
: "${PSYCOPG_WAIT_FUNC:=wait_select}"
export AMQP_URI DB_URI PSYCOPG_WAIT_FUNC
deadline=$(( $(date +%s) + WAIT_TIMEOUT_S ))

case "$1" in
    # name)    run_service name     module:Class                              config                          address var          db
    identity)  run_service identity services.identity.service:IdentityService services/identity/config.yaml IDENTITY_WEB_ADDRESS yes ;;
    dispatch)  run_service dispatch services.dispatch.service:DispatchService services/dispatch/config.yaml DISPATCH_WEB_ADDRESS yes ;;
    intake)    run_service intake   services.intake.service:IntakeService     services/intake/config.yaml   INTAKE_WEB_ADDRESS   yes ;;
    integration365) run_service integration365 services.integration365.service:Integration365Service services/integration365/config.yaml INTEGRATION365_WEB_ADDRESS yes ;;
    rewards)   run_service rewards  services.rewards.service:RewardsService   services/rewards/config.yaml  REWARDS_WEB_ADDRESS  yes ;;
    gateway)   run_service gateway  gateway.service:GatewayService            gateway/config.yaml           GATEWAY_WEB_ADDRESS  no ;;
    provision)
        wait_for broker "$AMQP_URI"
        wait_for database "$DB_URI"
        if [ -n "${S3_ENDPOINT:-}" ]; then
            wait_for "object store" "$S3_ENDPOINT"
        fi
        log "provisioning: database, migrations, reference data, broker topology, bucket"
        exec python -m tools.stack provision
        ;;
    # The 平安365 simulator, for a laptop's compose stack (never in Kubernetes).
    pingan365-sim)
        log "starting the 平安365 simulator on ${PINGAN365_SIM_ADDRESS:-0.0.0.0:8005}"
        exec python -m services.integration365.simulator \
            --address "${PINGAN365_SIM_ADDRESS:-0.0.0.0:8005}"
        ;;
    # The SMS simulator, likewise for compose only.
    sms-sim)
        log "starting the SMS simulator on ${SMS_SIM_ADDRESS:-0.0.0.0:8006}"
        exec python -m services.identity.sms_simulator \
            --address "${SMS_SIM_ADDRESS:-0.0.0.0:8006}"
        ;;
    *) usage ;;
esac
