#!/usr/bin/env bash
# Start everything on one machine: the web server, the Django Q clusters (`manage.py qcluster`
# runs the delivery cluster and starts the status callbacks' cluster beside it) and the fakes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WEB_PORT=${WEB_PORT:-8000}
FAKE_PORT=${FAKE_PORT:-8100}
export DEBUG=${DEBUG:-true}
# Receipts are checked locally too: the fake providers post them with this pair.
export CALLBACK_BASIC_AUTH=${CALLBACK_BASIC_AUTH:-local:local-receipts-secret}

for port in "$WEB_PORT" "$FAKE_PORT"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    echo "Port $port is already in use (another make run?). Stop it, or set WEB_PORT / FAKE_PORT." >&2
    exit 1
  fi
done
mkdir -p run

pids=()
qcluster=""
stop() {
  trap - EXIT INT TERM
  # Background processes of a script start with SIGINT ignored, so the web server and the fakes
  # get SIGTERM; the cluster gets SIGINT, as django-q2 can hang on SIGTERM (django-q2 issue #346).
  kill -TERM "${pids[@]}" 2>/dev/null || true
  [[ -n "$qcluster" ]] && kill -INT "$qcluster" 2>/dev/null
  for _ in $(seq 50); do
    kill -0 "${pids[@]}" $qcluster 2>/dev/null || break
    sleep 0.2
  done
  kill -KILL "${pids[@]}" $qcluster 2>/dev/null || true
}
trap stop EXIT
trap 'exit 130' INT TERM

$PY manage.py migrate --verbosity 0
$PY manage.py setup_schedules >/dev/null
KEY=$($PY manage.py create_api_key "Local service" | tail -n 1)

# The fake providers stand in for Firetext, MMG and SES, and post receipts back to the web server
# (with the first CALLBACK_BASIC_AUTH pair, if set). Anything already set in the environment wins.
FAKE=http://127.0.0.1:$FAKE_PORT
WEB=http://127.0.0.1:$WEB_PORT
RECEIPTS_TO=$WEB
[[ -n "${CALLBACK_BASIC_AUTH:-}" ]] && RECEIPTS_TO="http://${CALLBACK_BASIC_AUTH%%,*}@127.0.0.1:$WEB_PORT"
export FIRETEXT_URL=${FIRETEXT_URL:-$FAKE/firetext} MMG_URL=${MMG_URL:-$FAKE/mmg}
export FIRETEXT_API_KEY=${FIRETEXT_API_KEY:-local-firetext-key}
export FIRETEXT_INTERNATIONAL_API_KEY=${FIRETEXT_INTERNATIONAL_API_KEY:-local-firetext-intl-key}
export MMG_API_KEY=${MMG_API_KEY:-local-mmg-key}
# The receipt URLs carry the basic-auth pair, as a provider's receipt configuration would.
export FIRETEXT_RECEIPT_URL=${FIRETEXT_RECEIPT_URL:-$RECEIPTS_TO/notifications/sms/firetext}
export MMG_RECEIPT_URL=${MMG_RECEIPT_URL:-$RECEIPTS_TO/notifications/sms/mmg}
export AWS_ENDPOINT_URL_SESV2=${AWS_ENDPOINT_URL_SESV2:-$FAKE}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
export SNS_VERIFY_SIGNATURES=${SNS_VERIFY_SIGNATURES:-false}  # the fake's receipts are unsigned
# Status callbacks go to the fake providers' receiver, over plain http to 127.0.0.1: allowed
# here only (the guard refuses both anywhere else).
export SERVICE_CALLBACK_ALLOW_INSECURE=${SERVICE_CALLBACK_ALLOW_INSECURE:-true}

$PY manage.py runfakeproviders --port "$FAKE_PORT" --receipts-to "$RECEIPTS_TO" >run/fakeproviders.log 2>&1 &
pids+=($!)
for _ in $(seq 50); do
  curl -fs "$FAKE/" >/dev/null 2>&1 && break
  sleep 0.2
done

$PY manage.py qcluster >run/qcluster.log 2>&1 &
qcluster=$!
$PY manage.py runserver "127.0.0.1:$WEB_PORT" --noreload >run/web.log 2>&1 &
pids+=($!)

for _ in $(seq 50); do
  curl -fs "http://127.0.0.1:$WEB_PORT/healthz" >/dev/null 2>&1 && break
  sleep 0.2
done

# The local service's status callbacks go to the fake providers' receiver, which checks their
# signature (set afresh each run, so the receiver learns the new secret).
curl -fs -X DELETE "$WEB/service/callback" -H "Authorization: Bearer $KEY" >/dev/null || true
SECRET=$(curl -fs -X PUT "$WEB/service/callback" -H "Authorization: Bearer $KEY" \
  -H 'Content-Type: application/json' \
  -d "{\"url\": \"$FAKE/service-callback\", \"bearer_token\": \"local-callback-token\"}" \
  | $PY -c 'import json, sys; print(json.load(sys.stdin).get("signing_secret", ""))' || true)
if [[ -n "$SECRET" ]]; then
  curl -fs -X POST "$FAKE/_callbacks" -d "{\"signing_secret\": \"$SECRET\"}" >/dev/null || true
else
  echo "Could not set the local service's status callback (see run/web.log)." >&2
fi

cat <<MSG

Notify is running (logs in run/):
  API        http://127.0.0.1:$WEB_PORT/notifications
  API docs   http://127.0.0.1:$WEB_PORT/docs/
  admin      http://127.0.0.1:$WEB_PORT/admin/   (make admin, in another terminal, for the first login)
  health     http://127.0.0.1:$WEB_PORT/healthz
  fakes      $FAKE/_requests   (sends received; $FAKE/_receipts, POST $FAKE/_control)
  callbacks  $FAKE/_callbacks  (status callbacks the local service got, signatures checked;
                                each logged in run/fakeproviders.log)

Send a text:
  curl -s -X POST http://127.0.0.1:$WEB_PORT/notifications/sms \\
    -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"phone_number": "07700 900123", "content": "Hello from Notify"}'

Send an email:
  curl -s -X POST http://127.0.0.1:$WEB_PORT/notifications/email \\
    -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"email_address": "someone@example.com", "subject": "Hello", "content": "Hello from Notify"}'

GOV.UK Notify's clients (/v2; README: Coming from GOV.UK Notify): make a template with
  .venv/bin/python manage.py create_template "Local service" --type sms --name Code --body 'Hello ((name))'
then NotificationsAPIClient('$KEY', base_url='http://127.0.0.1:$WEB_PORT')

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" "$qcluster"
