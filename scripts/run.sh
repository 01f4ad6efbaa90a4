#!/usr/bin/env bash
# run.sh — what `make run` executes: a Temporal dev server (SQLite file and
# Web UI, from bin/temporal) plus `usersync dev` (API + worker in one
# process), both with their state in the data folder, so a newcomer gets the
# whole system with one command and Ctrl-C stops all of it.
#
# The Temporal ports come from the usual variables: TEMPORAL_ADDRESS (a
# loopback host:port starts the dev server there; another host is used as
# it is, starting none) and TEMPORAL_UI_URL (its port is the Web UI's;
# default: the frontend port + 1000, as the Temporal CLI does). A Temporal
# already listening on that port is reused, not replaced. Settings are the
# usual variables (README.md, "Configuration").
set -euo pipefail

cd "$(dirname "$0")/.."

export USERSYNC_DATA_DIR="${USERSYNC_DATA_DIR:-./data}"
data="$USERSYNC_DATA_DIR"
temporal_address="${TEMPORAL_ADDRESS:-127.0.0.1:7233}"
temporal_host="${temporal_address%:*}"
temporal_port="${temporal_address##*:}"
if [[ ! $temporal_port =~ ^[0-9]+$ || $temporal_host == "$temporal_address" ]]; then
  echo "run.sh: TEMPORAL_ADDRESS=$temporal_address is not host:port" >&2
  exit 1
fi
if [[ -n ${TEMPORAL_UI_URL:-} ]]; then
  ui_url="$TEMPORAL_UI_URL"
  ui_port="${ui_url#*://}"
  ui_port="${ui_port%%/*}"
  if [[ $ui_port == *:* ]]; then ui_port="${ui_port##*:}"; else ui_port=80; fi
else
  ui_port=$((temporal_port + 1000))
  ui_url="http://localhost:$ui_port"
fi
# usersync dev reads the same variables: it connects where the server runs
# and links runs into this UI.
export TEMPORAL_ADDRESS="$temporal_address" TEMPORAL_UI_URL="$ui_url"
listen="${USERSYNC_LISTEN:-127.0.0.1:8080}"

for b in bin/usersync bin/temporal; do
  if [[ ! -x $b ]]; then
    echo "run.sh: $b is missing; start with 'make run', which builds it" >&2
    exit 1
  fi
done
mkdir -p "$data"

temporal_pid=""
usersync_pid=""
cleanup() {
  local rc=$?
  trap - INT TERM EXIT
  if [[ -n $usersync_pid ]] && kill -0 "$usersync_pid" 2>/dev/null; then
    kill -TERM "$usersync_pid" 2>/dev/null || true
    wait "$usersync_pid" 2>/dev/null || true
  fi
  if [[ -n $temporal_pid ]] && kill -0 "$temporal_pid" 2>/dev/null; then
    echo "run.sh: stopping the Temporal dev server" >&2
    kill -TERM "$temporal_pid" 2>/dev/null || true
    wait "$temporal_pid" 2>/dev/null || true
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# port_open HOST PORT: true when something accepts connections there.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# --- Temporal -----------------------------------------------------------
if [[ $temporal_host != 127.0.0.1 && $temporal_host != localhost ]]; then
  echo "run.sh: TEMPORAL_ADDRESS=$temporal_address: using that Temporal, starting none"
elif port_open 127.0.0.1 "$temporal_port"; then
  if bin/temporal operator cluster health --address "127.0.0.1:$temporal_port" >/dev/null 2>&1; then
    echo "run.sh: a Temporal server already listens on 127.0.0.1:$temporal_port: reusing it"
  else
    echo "run.sh: port $temporal_port is taken by something that is not a healthy Temporal server; stop it or set TEMPORAL_ADDRESS" >&2
    exit 1
  fi
else
  log="$data/temporal.log"
  echo "run.sh: starting the Temporal dev server (state in $data/temporal.db, log in $log)"
  bin/temporal server start-dev \
    --db-filename "$data/temporal.db" \
    --ui-port "$ui_port" \
    --port "$temporal_port" \
    --search-attribute ProfileName=Keyword \
    --search-attribute Provider=Keyword \
    --log-level warn >"$log" 2>&1 &
  temporal_pid=$!
  for ((i = 0; ; i++)); do
    if port_open 127.0.0.1 "$temporal_port"; then
      break
    fi
    if ! kill -0 "$temporal_pid" 2>/dev/null; then
      temporal_pid=""
      echo "run.sh: the Temporal dev server exited at start; the end of $log:" >&2
      tail -n 20 "$log" >&2 || true
      exit 1
    fi
    if ((i >= 120)); then
      echo "run.sh: the Temporal dev server did not accept connections on 127.0.0.1:$temporal_port within 60 s; see $log" >&2
      exit 1
    fi
    sleep 0.5
  done
fi

# --- usersync dev ---------------------------------------------------------
host="${listen%:*}"
port="${listen##*:}"
case "$host" in "" | 0.0.0.0 | "[::]") host=127.0.0.1 ;; esac
api_url="http://$host:$port/api/v1"

bin/usersync dev &
usersync_pid=$!
for ((i = 0; ; i++)); do
  if curl -fsS -o /dev/null "http://$host:$port/healthz" 2>/dev/null; then
    break
  fi
  if ! kill -0 "$usersync_pid" 2>/dev/null; then
    rc=0
    wait "$usersync_pid" || rc=$?
    usersync_pid=""
    echo "run.sh: usersync dev exited at start (status $rc)" >&2
    exit 1
  fi
  if ((i >= 120)); then
    echo "run.sh: usersync dev did not answer on $api_url within 60 s" >&2
    exit 1
  fi
  sleep 0.5
done

token="${USERSYNC_API_TOKEN:-}"
if [[ -z $token && -r $data/api-token ]]; then
  token="$(<"$data/api-token")"
fi

cat <<EOF

  usersync is running.  Ctrl-C stops it and the Temporal dev server.

    API          $api_url
    API token    ${token:-<see the output of usersync dev above>}
    Temporal UI  $ui_url

  Try it: the Quickstart in README.md (upload examples/people.csv and sync it):
    export TOKEN=$token API=$api_url

EOF

rc=0
wait "$usersync_pid" || rc=$?
usersync_pid=""
exit "$rc"
