# Apache Spark standalone cluster on 127.0.0.1: one master + one worker, run from the venv's pyspark install
# (its jars/ folder is a complete Spark distribution), plus the extra jars sessions need (Kafka source/sink,
# PostgreSQL JDBC driver) resolved from Maven Central into cache/spark-jars (see infra/spark/pom.xml).
# Settings: config/spark_settings.json, each overridable by STOCK_SPARK_<KEY>. Logs: log/spark-{master,worker}.log;
# executor work dirs: data/spark/work. Sessions: spark/session.py. See /work/shared/PLATFORM-NOTES.md "Spark".

SPARK_SRC=$ROOT_DIR/infra/spark
SPARK_JARS_DIR=$CACHE_DIR/spark-jars
SPARK_WORK_DIR=$DATA_DIR/spark/work
SPARK_PYTHON=${STOCK_SPARK_PYTHON:-$ROOT_DIR/.venv/bin/python}

_spark_cfg() { cfg spark_settings "$1" "STOCK_SPARK_${1^^}"; }

# SPARK_PKG (pyspark's package dir, used as SPARK_HOME) and SPARK_PKG_VERSION, without importing pyspark (slow).
_spark_locate() {
  [ -n "${SPARK_PKG:-}" ] && return 0
  [ -x "$SPARK_PYTHON" ] || die "no Python at $SPARK_PYTHON (create the project venv first)"
  read -r SPARK_PKG SPARK_PKG_VERSION < <("$SPARK_PYTHON" -c 'import importlib.metadata as m, importlib.util as u
print(u.find_spec("pyspark").submodule_search_locations[0], m.version("pyspark"))' 2>/dev/null) || true
  [ -d "${SPARK_PKG:-}/jars" ] || die "pyspark (with its jars/) is not installed in $SPARK_PYTHON"
}

spark_install() {
  _spark_locate
  local conn jdbc stamp tmp=$SPARK_JARS_DIR.tmp cg ca cv jg ja jv artifact version dropped=()
  conn=$(_spark_cfg kafka_connector); jdbc=$(_spark_cfg jdbc_driver)
  stamp="pyspark $SPARK_PKG_VERSION $conn $jdbc $(sha256sum <"$SPARK_SRC/pom.xml" | cut -d' ' -f1)"
  [ "$(cat "$SPARK_JARS_DIR/.complete" 2>/dev/null)" = "$stamp" ] && return 0

  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  IFS=: read -r cg ca cv <<<"$conn"; IFS=: read -r jg ja jv <<<"$jdbc"
  [[ -n $cv && -n $jv ]] || die "kafka_connector and jdbc_driver must be group:artifact:version"
  # The connector must match Spark exactly; pyspark is pinned to the newest Spark on Maven Central.
  [ "$cv" = "$SPARK_PKG_VERSION" ] || die "Kafka connector $cv does not match pyspark $SPARK_PKG_VERSION"

  log "resolving $conn and $jdbc from Maven Central"
  rm -rf "$tmp"
  mvn -B -q -f "$SPARK_SRC/pom.xml" dependency:copy-dependencies dependency:list \
      -Dconnector.groupId="$cg" -Dconnector.artifactId="$ca" -Dconnector.version="$cv" \
      -Djdbc.groupId="$jg" -Djdbc.artifactId="$ja" -Djdbc.version="$jv" \
      -DoutputDirectory="$tmp" -DoutputFile="$tmp/.artifacts" -Dmaven.repo.local="$CACHE_DIR/m2" \
      >>"$LOG_DIR/spark-install.log" 2>&1 || die "Maven dependency resolution failed (see $LOG_DIR/spark-install.log)"

  # Whatever pyspark already bundles (in any version) is on the JVM's own classpath, which wins over spark.jars:
  # a second copy could only conflict. The pom excludes the known ones; this catches new transitive deps.
  while read -r artifact version; do
    if compgen -G "$SPARK_PKG/jars/$artifact-[0-9]*.jar" >/dev/null; then
      rm -f "$tmp/$artifact-$version.jar"; dropped+=("$artifact-$version")
    fi
  done < <(sed -n 's/^ *[^: ]*:\([^: ]*\):jar:\([^: ]*\):.*/\1 \2/p' "$tmp/.artifacts")
  [ ${#dropped[@]} -eq 0 ] || log "dropped (pyspark bundles them): ${dropped[*]}"

  echo "$stamp" >"$tmp/.complete"
  rm -rf "$SPARK_JARS_DIR" && mv "$tmp" "$SPARK_JARS_DIR"
  log "jars in $SPARK_JARS_DIR: $(cd "$SPARK_JARS_DIR" && echo *.jar)"
}

# _spark_java_cmd CLASS ARGS...: SPARK_CMD = the JVM command line Spark's own launcher builds for CLASS (what
# bin/spark-class runs): java -cp "<pyspark>/jars/*" -Xmx512m + the --add-opens flags Spark needs on Java 17.
# SPARK_SCALA_VERSION is required: without it the launcher looks for a source build ("Cannot find any build
# directories"). The worker launches executors through the same launcher, so it needs it in its environment too.
_spark_java_cmd() {
  local out=()
  mapfile -d '' out < <(SPARK_HOME=$SPARK_PKG SPARK_SCALA_VERSION=2.13 SPARK_DAEMON_MEMORY=512m \
    java -cp "$SPARK_PKG/jars/*" org.apache.spark.launcher.Main "$@")
  # Output: messages, then the marker "\0\n", then the command's words, each ending in \0.
  [ -n "${out[0]:-}" ] && log "launcher: ${out[0]}"
  SPARK_CMD=("${out[@]:1}"); SPARK_CMD[0]=${SPARK_CMD[0]:-}; SPARK_CMD[0]=${SPARK_CMD[0]#$'\n'}
  [[ ${SPARK_CMD[0]:-} == */java ]] || die "Spark's launcher failed to build the command for $1"
}

# The environment both daemons (and through the worker, every executor) run in.
_spark_env() {
  SPARK_ENV=(env SPARK_HOME="$SPARK_PKG" SPARK_SCALA_VERSION=2.13 SPARK_LOCAL_IP=127.0.0.1
    PYSPARK_PYTHON="$SPARK_PYTHON")
}

# Master's /json/ (the standalone UI's JSON view); empty if it does not answer within 2 s.
_spark_master_json() { curl -sf -m 2 "http://127.0.0.1:$(_spark_cfg master_ui_port)/json/" 2>/dev/null; }
_spark_alive_workers() {
  _spark_master_json | python3 -c 'import json,sys
d = json.load(sys.stdin); print(int(d.get("aliveworkers", 0)) if d.get("status") == "ALIVE" else 0)' 2>/dev/null || echo 0
}
# Our worker process runs and the master counts >= 1 ALIVE worker (a worker killed with -9 stays ALIVE
# in the master for spark.worker.timeout, 60 s, hence the pid check too).
_spark_has_worker() { pid_alive spark-worker && [ "$(_spark_alive_workers)" -ge 1 ]; }

spark_start() {
  local port ui wui cores mem master_cmd=() worker_cmd=()
  port=$(_spark_cfg master_port); ui=$(_spark_cfg master_ui_port); wui=$(_spark_cfg worker_ui_port)
  cores=$(_spark_cfg worker_cores); mem=$(_spark_cfg worker_memory)
  _spark_locate; _spark_env
  # Both command lines up front, so the worker starts the moment the master's RPC port opens (a worker that
  # cannot reach the master only retries after 5-15 s). No REST submission server (unauthenticated, port 6066).
  if ! pid_alive spark-master; then
    for p in "$port" "$ui"; do port_open "$p" && die "port $p is already in use by another process"; done
    SPARK_MASTER_OPTS="-Dspark.master.rest.enabled=false" \
      _spark_java_cmd org.apache.spark.deploy.master.Master --host 127.0.0.1 --port "$port" --webui-port "$ui"
    master_cmd=("${SPARK_CMD[@]}")
  fi
  if ! pid_alive spark-worker; then
    port_open "$wui" && die "port $wui is already in use by another process"
    mkdir -p "$SPARK_WORK_DIR"
    # App dirs (each holds copies of the app's jars) are removed a day after the app ends.
    SPARK_WORKER_OPTS="-Dspark.worker.cleanup.enabled=true -Dspark.worker.cleanup.appDataTtl=86400" \
      _spark_java_cmd org.apache.spark.deploy.worker.Worker "spark://127.0.0.1:$port" --host 127.0.0.1 \
        --cores "$cores" --memory "$mem" --webui-port "$wui" --work-dir "$SPARK_WORK_DIR"
    worker_cmd=("${SPARK_CMD[@]}")
  fi

  if [ ${#master_cmd[@]} -gt 0 ]; then
    start_daemon spark-master "${SPARK_ENV[@]}" "${master_cmd[@]}"
    wait_for 60 "Spark master on port $port" _spark_settled spark-master port_open "$port" || true
    pid_alive spark-master ||
      { tail -n 30 "$LOG_DIR/spark-master.log" >&2; die "Spark master exited (see $LOG_DIR/spark-master.log)"; }
  fi
  [ ${#worker_cmd[@]} -gt 0 ] && start_daemon spark-worker "${SPARK_ENV[@]}" "${worker_cmd[@]}"
  wait_for 90 "a Spark worker to register" _spark_settled spark-worker _spark_has_worker || true
  _spark_has_worker ||
    { tail -n 30 "$LOG_DIR/spark-worker.log" >&2; die "no Spark worker registered (see $LOG_DIR/spark-worker.log)"; }
}
# _spark_settled NAME CHECK...: CHECK succeeds, or daemon NAME is gone (no point in waiting any longer).
_spark_settled() { local name=$1; shift; "$@" || ! pid_alive "$name"; }

spark_stop() { stop_daemon spark-worker 30; stop_daemon spark-master 30; }

spark_healthy() { pid_alive spark-master && _spark_has_worker; }

spark_where() {
  local n; n=$(_spark_alive_workers)
  echo "$(_spark_cfg master_url) (UI http://127.0.0.1:$(_spark_cfg master_ui_port), $n worker$([ "$n" = 1 ] || echo s))"
}
