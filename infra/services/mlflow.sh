# MLflow tracking server + model registry on 127.0.0.1:<mlflow_settings.port>, backed by the project's
# PostgreSQL (database <mlflow_settings.dbname>, owned by the warehouse role; created by mlflow_start).
# Artifacts (pickled models) are proxied by the server into $DATA_DIR/mlflow/artifacts.
# The server runs from its own venv ($CACHE_DIR/mlflow-<version>): full `mlflow` 3.x pins pyarrow<26,
# which conflicts with the project's pyarrow 26, so the project venv carries only the client
# (mlflow-skinny, same version) and talks to this server over REST (docs/forecast.md, "Registry").
# Needs the postgres unit up first (listed after it in infra/services.sh).

MLFLOW_VERSION=3.17.2
MLFLOW_HOME=$CACHE_DIR/mlflow-$MLFLOW_VERSION
MLFLOW_DATA=$DATA_DIR/mlflow

mlflow_port() { cfg mlflow_settings port STOCK_MLFLOW_PORT; }

mlflow_install() {
  [ -f "$MLFLOW_HOME/.complete" ] && return 0
  log "installing mlflow $MLFLOW_VERSION into $MLFLOW_HOME (log: $LOG_DIR/mlflow-install.log)"
  rm -rf "$MLFLOW_HOME"
  { python3 -m uv venv --python 3.11 "$MLFLOW_HOME" &&
    python3 -m uv pip install --python "$MLFLOW_HOME/bin/python" "mlflow==$MLFLOW_VERSION" "psycopg2-binary>=2.9"
  } >>"$LOG_DIR/mlflow-install.log" 2>&1 || die "mlflow install failed (see $LOG_DIR/mlflow-install.log)"
  touch "$MLFLOW_HOME/.complete"
}

mlflow_start() {
  local port user pw db_port mdb
  port=$(mlflow_port); user=$(cfg db_settings user STOCK_DB_USER); pw=$(cfg db_settings password STOCK_DB_PASSWORD)
  db_port=$(cfg db_settings port STOCK_DB_PORT); mdb=$(cfg mlflow_settings dbname STOCK_MLFLOW_DBNAME)
  mkdir -p "$MLFLOW_DATA/artifacts"
  # The registry's database, idempotently, as the warehouse role (it has CREATEDB). The password reaches
  # libpq through PGPASSWORD, never argv or the log.
  PGPASSWORD=$pw "$MLFLOW_HOME/bin/python" - "$user" "$db_port" "$mdb" <<'PY' || die "cannot create database for mlflow"
import sys, psycopg2
from psycopg2 import sql
user, port, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
conn = psycopg2.connect(host="127.0.0.1", port=port, user=user, dbname="postgres")
conn.autocommit = True
cur = conn.cursor()
cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,))
if cur.fetchone() is None:
    cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(db)))
PY
  # --workers 1: the host has 2 cores shared with everything else. The backend URI carries no password
  # (libpq reads PGPASSWORD from the server's environment).
  PGPASSWORD=$pw start_daemon mlflow "$MLFLOW_HOME/bin/mlflow" server \
    --host 127.0.0.1 --port "$port" --workers 1 \
    --backend-store-uri "postgresql+psycopg2://$user@127.0.0.1:$db_port/$mdb" \
    --artifacts-destination "$MLFLOW_DATA/artifacts" --serve-artifacts
  wait_for 180 "mlflow on port $port" mlflow_healthy || die "mlflow not healthy (see $LOG_DIR/mlflow.log)"
}

mlflow_stop() { stop_daemon mlflow 30; }

mlflow_healthy() {
  pid_alive mlflow && python3 -c 'import sys, urllib.request
sys.exit(0 if urllib.request.urlopen(sys.argv[1] + "/health", timeout=3).status == 200 else 1)' \
    "http://127.0.0.1:$(mlflow_port)" >/dev/null 2>&1
}

mlflow_where() { echo "http://127.0.0.1:$(mlflow_port) (mlflow $MLFLOW_VERSION, backend postgresql/$(cfg mlflow_settings dbname STOCK_MLFLOW_DBNAME))"; }
