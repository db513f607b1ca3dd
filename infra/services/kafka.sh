# Apache Kafka: single-node KRaft broker+controller run from Maven Central jars (Debian has no Kafka).
# Config templates live in infra/kafka/; jars in cache/kafka-<version>/libs; data in data/kafka/.

KAFKA_VERSION=4.4.0
KAFKA_SRC=$ROOT_DIR/infra/kafka
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
KAFKA_DATA=$DATA_DIR/kafka

_kafka_port() { local b; b=$(cfg kafka_settings bootstrap_servers STOCK_KAFKA_BOOTSTRAP_SERVERS); echo "${b##*:}"; }

kafka_install() {
  local stamp
  stamp="$KAFKA_VERSION $(sha256sum <"$KAFKA_SRC/pom.xml" | cut -d' ' -f1)"
  [ "$(cat "$KAFKA_LIBS/.complete" 2>/dev/null)" = "$stamp" ] && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  log "resolving Kafka $KAFKA_VERSION and its dependencies from Maven Central"
  rm -rf "$KAFKA_LIBS.tmp"
  mvn -B -q -f "$KAFKA_SRC/pom.xml" dependency:copy-dependencies -Dkafka.version="$KAFKA_VERSION" \
      -DoutputDirectory="$KAFKA_LIBS.tmp" -Dmaven.repo.local="$CACHE_DIR/m2" >>"$LOG_DIR/kafka-install.log" 2>&1 \
    || die "Maven dependency resolution failed (see $LOG_DIR/kafka-install.log)"
  echo "$stamp" >"$KAFKA_LIBS.tmp/.complete"
  rm -rf "$KAFKA_LIBS" && mv "$KAFKA_LIBS.tmp" "$KAFKA_LIBS"
}

# A Kafka cluster id is 16 random bytes, unpadded URL-safe base64, not starting with '-'.
_kafka_new_cluster_id() {
  local id=-
  while [ "${id:0:1}" = - ]; do id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '='); done
  echo "$id"
}

# JVM command line as an array (start_daemon runs it through setsid, so it cannot be a function).
# shellcheck disable=SC2206  # KAFKA_HEAP is a list of JVM flags
_kafka_java_cmd() {
  KAFKA_JAVA=(java ${KAFKA_HEAP:--Xmx512m -Xms256m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_SRC/log4j2.properties" -cp "$KAFKA_LIBS/*")
}

kafka_start() {
  local port cport props=$KAFKA_DATA/server.properties
  port=$(_kafka_port); cport=$(cfg kafka_settings controller_port STOCK_KAFKA_CONTROLLER_PORT)
  if ! _kafka_alive; then
    _kafka_java_cmd
    for p in "$port" "$cport"; do port_open "$p" && die "port $p is already in use by another process"; done
    mkdir -p "$KAFKA_DATA/logs"
    sed -e "s|@PORT@|$port|g" -e "s|@CONTROLLER_PORT@|$cport|g" -e "s|@LOG_DIRS@|$KAFKA_DATA/logs|g" \
      "$KAFKA_SRC/server.properties.tmpl" >"$props"
    if [ ! -f "$KAFKA_DATA/logs/meta.properties" ]; then
      [ -s "$KAFKA_DATA/cluster.id" ] || _kafka_new_cluster_id >"$KAFKA_DATA/cluster.id"
      log "formatting storage (cluster id $(cat "$KAFKA_DATA/cluster.id"))"
      "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$(cat "$KAFKA_DATA/cluster.id")" -c "$props" \
        >>"$LOG_DIR/kafka.log" 2>&1 || die "storage format failed (see $LOG_DIR/kafka.log)"
    fi
    # _kafka_ready only looks at log lines written after this offset.
    stat -c %s "$LOG_DIR/kafka.log" 2>/dev/null >"$RUN_DIR/kafka.logpos" || echo 0 >"$RUN_DIR/kafka.logpos"
    rm -f "$RUN_DIR/kafka.ready"
    start_daemon kafka "${KAFKA_JAVA[@]}" kafka.Kafka "$props"
  fi
  wait_for 60 "Kafka on port $port" _kafka_settled
  kafka_healthy || { tail -n 30 "$LOG_DIR/kafka.log" >&2; die "Kafka did not start (see $LOG_DIR/kafka.log)"; }
}
_kafka_settled() { kafka_healthy || ! _kafka_alive; }
_kafka_alive() { pid_alive kafka; }

kafka_stop() { stop_daemon kafka 30; rm -f "$RUN_DIR/kafka.logpos" "$RUN_DIR/kafka.ready"; }

# Fast path: once a launch was seen ready, run/kafka.ready holds its pid.
kafka_healthy() {
  pid_alive kafka && port_open "$(_kafka_port)" || return 1
  [ "$(cat "$RUN_DIR/kafka.ready" 2>/dev/null)" = "$(cat "$RUN_DIR/kafka.pid")" ] && return 0
  _kafka_ready && cp "$RUN_DIR/kafka.pid" "$RUN_DIR/kafka.ready"
}

# Ready = "Kafka Server started" logged since the launch AND the group coordinator has loaded every
# existing __consumer_offsets partition: that happens asynchronously after "started", and until then
# offset fetches/commits fail with NOT_COORDINATOR.
_kafka_ready() {
  local hits want
  [ -f "$RUN_DIR/kafka.logpos" ] || return 1
  hits=$(tail -c +"$(($(cat "$RUN_DIR/kafka.logpos") + 1))" "$LOG_DIR/kafka.log" |
    grep -oE 'Kafka Server started|Finished loading of metadata from __consumer_offsets-[0-9]+' | sort -u) || true
  want=$(compgen -G "$KAFKA_DATA/logs/__consumer_offsets-*" | wc -l)
  [[ $hits == *"Kafka Server started"* ]] && [ "$(grep -c __consumer_offsets <<<"$hits")" -ge "$want" ]
}

kafka_where() { echo "PLAINTEXT://127.0.0.1:$(_kafka_port) (Kafka $KAFKA_VERSION KRaft)"; }
