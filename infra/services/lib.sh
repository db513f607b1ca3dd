# Shared helpers for the local service units. Sourced by infra/services.sh; each unit
# infra/services/<name>.sh defines <name>_install, <name>_start, <name>_stop and <name>_healthy.
# State lives under $STOCK_STATE_DIR (default <repo>/.local): cache/ (downloads, builds; or
# $STOCK_CACHE_DIR, so a second state dir reuses them), data/<name>/, log/<name>.log, run/<name>.pid.

ROOT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
STATE_DIR=${STOCK_STATE_DIR:-$ROOT_DIR/.local}
CONFIG_DIR=${STOCK_CONFIG_DIR:-$ROOT_DIR/config}
CACHE_DIR=${STOCK_CACHE_DIR:-$STATE_DIR/cache}  # shareable between state dirs (chaos runs)
LOG_DIR=$STATE_DIR/log
RUN_DIR=$STATE_DIR/run
DATA_DIR=$STATE_DIR/data
mkdir -p "$CACHE_DIR" "$LOG_DIR" "$RUN_DIR" "$DATA_DIR"

log() { printf '[%s] %s\n' "${UNIT:-services}" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# cfg FILE KEY ENV_NAME: the env var if set, else the key from config/FILE.json (one source of truth).
cfg() {
  local file=$1 key=$2 env_name=$3
  if [ -n "${!env_name:-}" ]; then printf '%s' "${!env_name}"; return; fi
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$CONFIG_DIR/$file.json" "$key" \
    || die "cannot read '$key' from $CONFIG_DIR/$file.json (or set $env_name)"
}

# wait_for TIMEOUT_S DESCRIPTION COMMAND...: poll COMMAND every 0.5 s until it succeeds.
wait_for() {
  local timeout=$1 what=$2; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -ge $deadline ] && { log "timed out after ${timeout}s waiting for $what"; return 1; }
    sleep 0.5
  done
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# proc_alive PID: running and not a zombie (a killed JVM stays a zombie until pid 1 reaps it).
proc_alive() { local st; st=$(ps -o stat= -p "$1" 2>/dev/null) && [ -n "$st" ] && [[ $st != Z* ]]; }

pid_alive() { [ -f "$RUN_DIR/$1.pid" ] && proc_alive "$(cat "$RUN_DIR/$1.pid")"; }

# start_daemon NAME COMMAND...: run COMMAND in its own session (process group), log to log/NAME.log,
# record the group leader's pid in run/NAME.pid.
start_daemon() {
  local name=$1; shift
  setsid "$@" >>"$LOG_DIR/$name.log" 2>&1 < /dev/null &
  echo $! >"$RUN_DIR/$name.pid"
}

# stop_daemon NAME [TIMEOUT_S]: TERM the recorded process group, KILL it after the timeout.
stop_daemon() {
  local name=$1 timeout=${2:-20} pid
  [ -f "$RUN_DIR/$name.pid" ] || return 0
  pid=$(cat "$RUN_DIR/$name.pid")
  if proc_alive "$pid"; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null
    local deadline=$((SECONDS + timeout))
    while proc_alive "$pid" && [ $SECONDS -lt $deadline ]; do sleep 0.2; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$RUN_DIR/$name.pid"
}

# apt_install PKG...: install Debian packages that are missing (one apt-get update per run).
apt_install() {
  local missing=()
  for p in "$@"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  log "apt-get install ${missing[*]}"
  if [ ! -f "$STATE_DIR/.apt-updated" ]; then
    apt-get update -qq >>"$LOG_DIR/apt.log" 2>&1 || die "apt-get update failed (see $LOG_DIR/apt.log)"
    touch "$STATE_DIR/.apt-updated"
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" \
    >>"$LOG_DIR/apt.log" 2>&1 || die "apt-get install ${missing[*]} failed (see $LOG_DIR/apt.log)"
}
