#!/usr/bin/env bash
# `make run`: migrate the SQLite default, ensure the dev tenant, then run the API,
# the outbox worker and both mock services in the foreground. Ctrl-C stops all.
# Ports: PORT (API, 5000), VERIFIER_PORT (5001), REALIZER_PORT (5002).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PORT=${PORT:-5000}
VERIFIER_PORT=${VERIFIER_PORT:-5001}
REALIZER_PORT=${REALIZER_PORT:-5002}
export FLASK_APP=app
export APP_ENV=${APP_ENV:-development}
export EMAIL_VERIFIER_URL=${EMAIL_VERIFIER_URL:-http://127.0.0.1:$VERIFIER_PORT}
export COUPON_REALIZER_URL=${COUPON_REALIZER_URL:-http://127.0.0.1:$REALIZER_PORT}
export PUBLIC_BASE_URL=${PUBLIC_BASE_URL:-http://localhost:$PORT}
# Redemption events go to the realizer mock too, so they are recorded, not dropped.
export EVENTS_URL=${EVENTS_URL:-http://127.0.0.1:$REALIZER_PORT/events}

for pair in "PORT:$PORT" "VERIFIER_PORT:$VERIFIER_PORT" "REALIZER_PORT:$REALIZER_PORT"; do
  name=${pair%%:*} port=${pair#*:}
  if ! "$VENV/bin/python" -c "import socket,sys; s=socket.socket(); s.bind(('127.0.0.1', int(sys.argv[1])))" "$port" 2>/dev/null; then
    echo "make run: port $port is taken (or not a port); free it or run with $name=<another port>" >&2
    exit 1
  fi
done

"$VENV/bin/flask" db upgrade
"$VENV/bin/flask" tenant create test_brand --api-token secret123 --exists-ok

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$VENV/bin/python" -m mock_services --port "$VERIFIER_PORT" & pids+=($!)
"$VENV/bin/python" -m mock_services --port "$REALIZER_PORT" & pids+=($!)
"$VENV/bin/flask" outbox dispatch & pids+=($!)
"$VENV/bin/gunicorn" --bind "127.0.0.1:$PORT" --workers "${WEB_CONCURRENCY:-2}" \
  'app:create_app()' & pids+=($!)
echo "make run: API on http://127.0.0.1:$PORT (docs at /docs), console at http://127.0.0.1:$PORT/admin/ (API token secret123); Ctrl-C stops everything" >&2
# Any one process exiting stops the rest.
wait -n
