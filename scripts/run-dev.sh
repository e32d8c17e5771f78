#!/usr/bin/env bash
# `make run`: migrate the SQLite default, ensure the dev tenant, then run the API,
# the outbox worker and both mock services in the foreground. Ctrl-C stops all.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
export FLASK_APP=app
export APP_ENV=${APP_ENV:-development}
export EMAIL_VERIFIER_URL=${EMAIL_VERIFIER_URL:-http://127.0.0.1:5001}
export COUPON_REALIZER_URL=${COUPON_REALIZER_URL:-http://127.0.0.1:5002}

"$VENV/bin/flask" db upgrade
"$VENV/bin/flask" tenant create test_brand --api-token secret123 --exists-ok

pids=()
cleanup() {
  trap - INT TERM EXIT
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
}
trap cleanup INT TERM EXIT

"$VENV/bin/python" -m mock_services --port 5001 & pids+=($!)
"$VENV/bin/python" -m mock_services --port 5002 & pids+=($!)
"$VENV/bin/flask" outbox dispatch & pids+=($!)
"$VENV/bin/gunicorn" --bind 127.0.0.1:5000 --workers "${WEB_CONCURRENCY:-2}" \
  'app:create_app()' & pids+=($!)
# Any one process exiting stops the rest.
wait -n
