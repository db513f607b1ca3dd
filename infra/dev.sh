#!/usr/bin/env bash
# The platform's applications for `make dev`, each in its own process group with logs under
# .local/log/: ./infra/dev.sh run (foreground; Ctrl-C stops them) | stop.
# The services (PostgreSQL, Kafka, ...) are started before by `make services-up`.
set -euo pipefail
source "$(dirname "$0")/services/lib.sh"
cd "$ROOT_DIR"
PY=$ROOT_DIR/.venv/bin/python
DAGSTER_PORT=${DAGSTER_PORT:-3000}
export DAGSTER_HOME=$STATE_DIR/dagster

# name|command — the apps `make dev` runs, in start order. The producer first publishes the
# bundled history (every replay dataset) as fast as it can — once: its checkpoint and the
# warehouse say what is published — then continues live, simulated in NYSE sessions at
# REPLAY_SPEED x exchange time, never ahead of the wall clock.
REPLAY_SPEED=${STOCK_REPLAY_SPEED:-3600}
APPS=(
  "dagster|$ROOT_DIR/.venv/bin/dagster dev -w $ROOT_DIR/workspace.yaml -h 127.0.0.1 -p $DAGSTER_PORT"
  "dash|$PY -m dash_app"
  "streaming|$PY -m spark.streaming"
  "producer|$PY -m stock_assets.cli produce --source history --speed $REPLAY_SPEED --checkpoint $STATE_DIR/history.ckpt"
)

stop_apps() {
  for ((i=${#APPS[@]}-1; i>=0; i--)); do
    name=${APPS[i]%%|*}
    UNIT=$name stop_daemon "app-$name" 30
  done
}

case "${1:-run}" in
  stop) stop_apps; exit 0 ;;
  run) ;;
  *) die "usage: $0 run|stop" ;;
esac

mkdir -p "$DAGSTER_HOME"
cp infra/dagster/dagster.yaml "$DAGSTER_HOME/dagster.yaml"
eval "$("$PY" -m stock_assets.cli dev-env)"
PROGRESS_PID=
stop_progress() { [ -z "$PROGRESS_PID" ] || kill "$PROGRESS_PID" 2>/dev/null || true; }
trap 'echo; log "stopping apps"; stop_progress; stop_apps; exit 0' INT TERM
for app in "${APPS[@]}"; do
  name=${app%%|*}; command=${app#*|}
  pid_alive "app-$name" && { log "$name already running"; continue; }
  # shellcheck disable=SC2086
  UNIT=$name start_daemon "app-$name" $command
done
wait_for 120 "Dagster UI" curl -fsS -o /dev/null "http://127.0.0.1:$DAGSTER_PORT/server_info" \
  || die "Dagster did not come up; see $LOG_DIR/app-dagster.log"

cat <<MSG

  The platform is running (logs in $LOG_DIR):
    Dagster UI        http://127.0.0.1:$DAGSTER_PORT
    Dashboard         http://127.0.0.1:8050   ($("$PY" -c 'from dash_app.settings import DEV_USERNAME as u, DEV_PASSWORD as p; print(f"dev login: {u} / {p}")'))
    Spark streaming   Kafka market.ticks -> 1-minute bars -> market.live_bars_1m (Spark UI above)
    Producer          first the bundled history as one backfill (daily bars of AAPL FB GOOG IBM
                      MSFT 2000-2013, AAPL hourly/minute bars 2024-2026; about 144k ticks), then
                      live: simulated ticks in NYSE sessions at ${REPLAY_SPEED}x into market.ticks
                      (once only: $STATE_DIR/history.ckpt and the warehouse say what is published)
$(./infra/services.sh status | sed 's/^/    /')

  Ctrl-C stops the apps; \`make services-down\` stops the services too.

  What you will see (progress below until the history is in; sign in to the dashboard first):
    after ~1 min     Market: daily candles of the five symbols since 2000
    then             Signals and Analytics: indicators and signals over the whole history
    then             Backtests and Portfolio: backtests per strategy, the paper portfolio's equity
    afterwards       live days appended every ~7 s (one NYSE session per 6.5 s at ${REPLAY_SPEED}x)
MSG
"$PY" -m stock_assets.cli progress --follow --every-s 10 2>>"$LOG_DIR/progress.log" &
PROGRESS_PID=$!
while true; do
  for app in "${APPS[@]}"; do
    name=${app%%|*}
    pid_alive "app-$name" || { log "$name exited; see $LOG_DIR/app-$name.log"; stop_progress; stop_apps; exit 1; }
  done
  sleep 2
done
