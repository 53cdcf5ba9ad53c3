#!/usr/bin/env bash
# Start everything on one machine: the web server, a Django Q cluster and the fake providers.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WEB_PORT=${WEB_PORT:-8000}
mkdir -p run

pids=()
stop() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap stop EXIT INT TERM

KEY=$($PY manage.py create_api_key "Local service" | tail -n 1)

$PY manage.py qcluster >run/qcluster.log 2>&1 &
pids+=($!)
$PY manage.py runserver "127.0.0.1:$WEB_PORT" --noreload >run/web.log 2>&1 &
pids+=($!)

for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$WEB_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

cat <<MSG

Notify is running (logs in run/):
  API        http://127.0.0.1:$WEB_PORT/notifications
  API docs   http://127.0.0.1:$WEB_PORT/docs/
  admin      http://127.0.0.1:$WEB_PORT/admin/   (python manage.py createsuperuser for a login)
  health     http://127.0.0.1:$WEB_PORT/healthz

Send a text:
  curl -s -X POST http://127.0.0.1:$WEB_PORT/notifications/sms \\
    -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"phone_number": "07700 900123", "content": "Hello from Notify"}'

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}"
