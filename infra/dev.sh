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
  "dash|$PY -m dash_app serve --workers 2"
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
STARTED=$(date +%s)
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

  What you will see, in this order (the progress lines below say when each arrives; the target
  is all of it within 3 minutes; sign in to the dashboard with the login above):
    1. Market           daily candles of AAPL FB GOOG IBM MSFT since 2000, AAPL intraday 2024-2026
    2. Market, Signals  indicators over the candles; strategy signals over the whole history
    3. Portfolio        backtests per strategy and symbol, the paper portfolio's equity curve
    4. then live        simulated sessions appended, one NYSE session per ~7 s at ${REPLAY_SPEED}x,
                        until the event time reaches today, then in real time
MSG
"$PY" -m stock_assets.cli progress --follow --every-s 10 --since "$STARTED" 2>>"$LOG_DIR/progress.log" &
PROGRESS_PID=$!
while true; do
  for app in "${APPS[@]}"; do
    name=${app%%|*}
    pid_alive "app-$name" || { log "$name exited; see $LOG_DIR/app-$name.log"; stop_progress; stop_apps; exit 1; }
  done
  sleep 2
done
