#!/usr/bin/env bash
# Start everything on one machine: the web server, the Django Q clusters (`manage.py qcluster`
# runs the delivery cluster and starts the status callbacks' cluster beside it) and the fakes.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
WEB_PORT=${WEB_PORT:-8000}
FAKE_PORT=${FAKE_PORT:-8100}
export DEBUG=${DEBUG:-true}
# Receipts are checked locally too: the fake Firetext and MMG each post theirs with their own
# pair, the fake SES (SNS) with the shared one.
export CALLBACK_BASIC_AUTH=${CALLBACK_BASIC_AUTH:-local:local-receipts-secret}
export FIRETEXT_RECEIPT_AUTH=${FIRETEXT_RECEIPT_AUTH:-firetext:local-firetext-receipts-secret}
export MMG_RECEIPT_AUTH=${MMG_RECEIPT_AUTH:-mmg:local-mmg-receipts-secret}
# The local service's inbound number: the fakes host it, so a text sent to it comes back as a
# received text (GET /v2/received-text-messages, the admin, the inbound callback).
INBOUND_NUMBER=${INBOUND_NUMBER:-07700900500}

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

# The fake providers stand in for Firetext, MMG and SES, and post receipts back to the web server:
# Firetext and MMG to the receipt URL each send gave them (with that provider's first pair), SES
# to --receipts-to (with the first CALLBACK_BASIC_AUTH pair). Anything already set in the
# environment wins.
FAKE=http://127.0.0.1:$FAKE_PORT
WEB=http://127.0.0.1:$WEB_PORT
receipts_to() {  # the web server's URL with the first pair of $1 in it, if any
  if [[ -n "$1" ]]; then echo "http://${1%%,*}@127.0.0.1:$WEB_PORT"; else echo "$WEB"; fi
}
RECEIPTS_TO=$(receipts_to "${CALLBACK_BASIC_AUTH:-}")
FIRETEXT_RECEIPTS_TO=$(receipts_to "${FIRETEXT_RECEIPT_AUTH:-${CALLBACK_BASIC_AUTH:-}}")
MMG_RECEIPTS_TO=$(receipts_to "${MMG_RECEIPT_AUTH:-${CALLBACK_BASIC_AUTH:-}}")
export FIRETEXT_URL=${FIRETEXT_URL:-$FAKE/firetext} MMG_URL=${MMG_URL:-$FAKE/mmg}
export FIRETEXT_API_KEY=${FIRETEXT_API_KEY:-local-firetext-key}
export FIRETEXT_INTERNATIONAL_API_KEY=${FIRETEXT_INTERNATIONAL_API_KEY:-local-firetext-intl-key}
export MMG_API_KEY=${MMG_API_KEY:-local-mmg-key}
# The receipt URLs carry each provider's own basic-auth pair, as its receipt configuration would.
export FIRETEXT_RECEIPT_URL=${FIRETEXT_RECEIPT_URL:-$FIRETEXT_RECEIPTS_TO/notifications/sms/firetext}
export MMG_RECEIPT_URL=${MMG_RECEIPT_URL:-$MMG_RECEIPTS_TO/notifications/sms/mmg}
export AWS_ENDPOINT_URL_SESV2=${AWS_ENDPOINT_URL_SESV2:-$FAKE}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-local} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-local}
export SNS_VERIFY_SIGNATURES=${SNS_VERIFY_SIGNATURES:-false}  # the fake's receipts are unsigned
# Status callbacks go to the fake providers' receiver, over plain http to 127.0.0.1: allowed
# here only (the guard refuses both anywhere else).
export SERVICE_CALLBACK_ALLOW_INSECURE=${SERVICE_CALLBACK_ALLOW_INSECURE:-true}

# Each step is a Python process that spends seconds starting: the fakes (no database) start
# beside the migration, and the schedules are corrected beside the cluster and the web server.
$PY manage.py runfakeproviders --port "$FAKE_PORT" --receipts-to "$RECEIPTS_TO" \
  --inbound-numbers "$INBOUND_NUMBER" >run/fakeproviders.log 2>&1 &
pids+=($!)
$PY manage.py migrate --verbosity 0
$PY manage.py setup_schedules >/dev/null &
schedules=$!

$PY manage.py qcluster >run/qcluster.log 2>&1 &
qcluster=$!
$PY manage.py runserver "127.0.0.1:$WEB_PORT" --noreload >run/web.log 2>&1 &
pids+=($!)

# Started when it answers; a slow machine gets two minutes.
wait_for() {
  for _ in $(seq 600); do
    curl -fs "$1" >/dev/null 2>&1 && return
    sleep 0.2
  done
  echo "$1 did not answer: see $2" >&2
  exit 1
}
wait_for "$WEB/livez" run/web.log
wait_for "$FAKE/" run/fakeproviders.log
wait "$schedules"

# The local service's API key is made once and kept in run/api-key (0600), so a restart keeps
# the key the user has been using; a kept key the database refuses (a new database) is replaced.
key_works() {
  [[ -s run/api-key ]] || return 1
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' "$WEB/service/callback" \
    -H "Authorization: Bearer $(cat run/api-key)")
  [[ "$code" != 401 && "$code" != 403 ]]
}
if ! key_works; then
  (umask 077 && $PY manage.py create_api_key "Local service" | tail -n 1 >run/api-key.new)
  mv run/api-key.new run/api-key
fi
KEY=$(cat run/api-key)
$PY manage.py set_inbound_number "Local service" "$INBOUND_NUMBER" >/dev/null &
inbound=$!

# The local service's status callbacks and received texts go to the fake providers' receiver,
# which checks their signatures. Each callback is set up only when the service has none, or has
# the one an earlier run set up (its URL in run/<name>-url; a PUT keeps its signing secret): a
# callback the user set is left alone. A secret is shown once, so it is kept in
# run/<name>-secret (0600) to tell each run's receiver. Sets NOTE for the banner.
callback_local() {  # API path, the receiver's path, the receiver's secret path, name, bearer token
  local api=$WEB/$1 receiver=$FAKE$2 told=$FAKE$3 state=run/$4 token=$5 current secret
  current=$(curl -fs "$api" -H "Authorization: Bearer $KEY" \
    | $PY -c 'import json, sys; print(json.load(sys.stdin)["url"])' 2>/dev/null || true)
  if [[ -n "$current" && "$current" != "$(cat "$state-url" 2>/dev/null)" ]]; then
    NOTE="go to $current (yours: left as it is)"
    return
  fi
  if [[ -z "$current" ]]; then rm -f "$state-secret"; fi
  secret=$(curl -fs -X PUT "$api" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' -d "{\"url\": \"$receiver\", \"bearer_token\": \"$token\"}" \
    | $PY -c 'import json, sys; print(json.load(sys.stdin).get("signing_secret", ""))' || true)
  if [[ -n "$secret" ]]; then (umask 077 && echo "$secret" >"$state-secret"); fi
  if [[ ! -s "$state-secret" ]]; then
    echo "Could not set the local service's $1 (see run/web.log)." >&2
    NOTE="not set up (see run/web.log)"
    return
  fi
  echo "$receiver" >"$state-url"
  curl -fs -X POST "$told" -d "{\"signing_secret\": \"$(cat "$state-secret")\"}" >/dev/null || true
  NOTE="$told  (signatures checked; each logged in run/fakeproviders.log)"
}
callback_local service/callback /service-callback /_callbacks callback local-callback-token
CALLBACKS=$NOTE
callback_local service/inbound-callback /service-inbound-callback /_inbound-callbacks \
  inbound-callback local-inbound-token
INBOUND_CALLBACKS=$NOTE
wait "$inbound"

cat <<MSG

Notify is running (logs in run/):
  API        http://127.0.0.1:$WEB_PORT/notifications
  API docs   http://127.0.0.1:$WEB_PORT/docs/
  admin      http://127.0.0.1:$WEB_PORT/admin/   (make admin, in another terminal, for the first login)
  health     http://127.0.0.1:$WEB_PORT/healthz
  API key    in run/api-key (the same one every run: KEY=\$(cat run/api-key))
  fakes      $FAKE/_requests   (sends received; $FAKE/_receipts, POST $FAKE/_control)
  callbacks  status: $CALLBACKS
             received texts: $INBOUND_CALLBACKS

Send a text:
  curl -s -X POST http://127.0.0.1:$WEB_PORT/notifications/sms \\
    -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"phone_number": "07700 900123", "content": "Hello from Notify"}'

Receive a text: send one to the local service's own inbound number ($INBOUND_NUMBER); the fake
provider delivers it back as a received text (or POST $FAKE/_control/inbound, docs/providers.md):
  curl -s -X POST http://127.0.0.1:$WEB_PORT/notifications/sms \\
    -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"phone_number": "$INBOUND_NUMBER", "content": "Hello, inbound"}'
  then GET /v2/received-text-messages, $FAKE/_inbound-callbacks, or the admin's received texts.

Send an email:
  curl -s -X POST http://127.0.0.1:$WEB_PORT/notifications/email \\
    -H 'Authorization: Bearer $KEY' -H 'Content-Type: application/json' \\
    -d '{"email_address": "someone@example.com", "subject": "Hello", "content": "Hello from Notify"}'

GOV.UK Notify's clients (/v2; docs/coming-from-notify.md): make a template with
  DEBUG=true .venv/bin/python manage.py create_template "Local service" --type sms --name Code --body 'Hello ((name))'
then NotificationsAPIClient('$KEY', base_url='http://127.0.0.1:$WEB_PORT')

Press Ctrl-C to stop.
MSG
wait -n "${pids[@]}" "$qcluster"
