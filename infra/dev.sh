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

# name|command — the apps `make dev` runs, in start order.
REPLAY_SPEED=${STOCK_REPLAY_SPEED:-3600}
APPS=(
  "dagster|$ROOT_DIR/.venv/bin/dagster dev -w $ROOT_DIR/workspace.yaml -h 127.0.0.1 -p $DAGSTER_PORT"
  "dash|$PY -m dash_app serve --workers 2"
  "streaming|$PY -m spark.streaming"
  "producer|$PY -m stock_assets.cli produce --source replay --dataset daily --speed $REPLAY_SPEED --checkpoint $STATE_DIR/replay.ckpt"
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
trap 'echo; log "stopping apps"; stop_apps; exit 0' INT TERM
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
    Producer          replaying real daily bars (bokeh-sampledata) as ticks at ${REPLAY_SPEED}x
                      into Kafka topic market.ticks (resumes from $STATE_DIR/replay.ckpt)
$(./infra/services.sh status | sed 's/^/    /')

  Ctrl-C stops the apps; \`make services-down\` stops the services too.
MSG
while true; do
  for app in "${APPS[@]}"; do
    name=${app%%|*}
    pid_alive "app-$name" || { log "$name exited; see $LOG_DIR/app-$name.log"; stop_apps; exit 1; }
  done
  sleep 2
done
