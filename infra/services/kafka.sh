# Apache Kafka in KRaft mode, run from Maven Central jars (Debian has no Kafka).
# Profiles (env STOCK_KAFKA_PROFILE):
#   single      (default) one combined broker+controller on kafka_settings.bootstrap_servers /
#               controller_port; data in data/kafka/, log log/kafka.log, pid run/kafka.pid.
#   replicated  three combined nodes on loopback: node i listens on port + 2(i-1) and controller
#               port + 2(i-1); data in data/kafka-replicated/node<i>/, log/kafka-<i>.log,
#               run/kafka-<i>.pid. Topics get replication factor 3 and min.insync.replicas 2:
#               any one node can die without losing an acknowledged (acks=all) record.
#               run/kafka.env tells the settings (stock_assets.lib.settings.KafkaSettings) the
#               bootstrap list and the replication settings.
# Config templates live in infra/kafka/; jars in cache/kafka-<version>/libs.

KAFKA_VERSION=4.4.0
KAFKA_SRC=$ROOT_DIR/infra/kafka
KAFKA_LIBS=$CACHE_DIR/kafka-$KAFKA_VERSION/libs
KAFKA_PROFILE=${STOCK_KAFKA_PROFILE:-single}
KAFKA_ENV=$RUN_DIR/kafka.env

case "$KAFKA_PROFILE" in
  single) KAFKA_NODES=(1); KAFKA_RF=1; KAFKA_MIN_ISR=1 ;;
  replicated) KAFKA_NODES=(1 2 3); KAFKA_RF=3; KAFKA_MIN_ISR=2 ;;
  *) die "STOCK_KAFKA_PROFILE must be single or replicated, not '$KAFKA_PROFILE'" ;;
esac

# The first bootstrap server's port (the env var may hold a list).
_kafka_base_port() {
  local b; b=$(cfg kafka_settings bootstrap_servers STOCK_KAFKA_BOOTSTRAP_SERVERS); b=${b%%,*}; echo "${b##*:}"
}
_kafka_base_cport() { cfg kafka_settings controller_port STOCK_KAFKA_CONTROLLER_PORT; }

# Per node: daemon name, data dir, broker port, controller port.
_kafka_name() { if [ "$KAFKA_PROFILE" = single ]; then echo kafka; else echo "kafka-$1"; fi; }
_kafka_data() { if [ "$KAFKA_PROFILE" = single ]; then echo "$DATA_DIR/kafka"; else echo "$DATA_DIR/kafka-replicated/node$1"; fi; }
_kafka_node_port() { echo $(($(_kafka_base_port) + 2 * ($1 - 1))); }
_kafka_node_cport() { echo $(($(_kafka_base_cport) + 2 * ($1 - 1))); }
# Kept for callers of the single profile: the broker port.
_kafka_port() { _kafka_node_port 1; }

kafka_bootstrap_servers() {
  local n out=()
  for n in "${KAFKA_NODES[@]}"; do out+=("127.0.0.1:$(_kafka_node_port "$n")"); done
  (IFS=,; echo "${out[*]}")
}

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
  local heap=${KAFKA_HEAP:--Xmx512m -Xms256m}
  [ "$KAFKA_PROFILE" = replicated ] && heap=${KAFKA_HEAP:--Xmx384m -Xms128m}
  KAFKA_JAVA=(java $heap -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExplicitGCInvokesConcurrent
    -Djava.awt.headless=true -Dlog4j2.configurationFile="$KAFKA_SRC/log4j2.properties" -cp "$KAFKA_LIBS/*")
}

_kafka_voters() {
  local n out=()
  for n in "${KAFKA_NODES[@]}"; do out+=("$n@127.0.0.1:$(_kafka_node_cport "$n")"); done
  (IFS=,; echo "${out[*]}")
}

# The cluster id every node of the profile is formatted with.
_kafka_cluster_id() {
  local f; f=$(dirname "$(_kafka_data 1)")/cluster.id
  [ "$KAFKA_PROFILE" = single ] && f=$(_kafka_data 1)/cluster.id
  mkdir -p "$(dirname "$f")"
  [ -s "$f" ] || _kafka_new_cluster_id >"$f"
  cat "$f"
}

_kafka_start_node() {
  local n=$1 name data port cport props
  name=$(_kafka_name "$n"); data=$(_kafka_data "$n")
  port=$(_kafka_node_port "$n"); cport=$(_kafka_node_cport "$n"); props=$data/server.properties
  pid_alive "$name" && return 0
  for p in "$port" "$cport"; do port_open "$p" && die "port $p is already in use by another process"; done
  mkdir -p "$data/logs"
  sed -e "s|@NODE_ID@|$n|g" -e "s|@VOTERS@|$(_kafka_voters)|g" -e "s|@PORT@|$port|g" \
    -e "s|@CONTROLLER_PORT@|$cport|g" -e "s|@LOG_DIRS@|$data/logs|g" \
    -e "s|@RF@|$KAFKA_RF|g" -e "s|@MIN_ISR@|$KAFKA_MIN_ISR|g" \
    "$KAFKA_SRC/server.properties.tmpl" >"$props"
  if [ ! -f "$data/logs/meta.properties" ]; then
    log "formatting storage of node $n (cluster id $(_kafka_cluster_id))"
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$(_kafka_cluster_id)" -c "$props" \
      >>"$LOG_DIR/$name.log" 2>&1 || die "storage format failed (see $LOG_DIR/$name.log)"
  fi
  # _kafka_ready only looks at log lines written after this offset.
  stat -c %s "$LOG_DIR/$name.log" 2>/dev/null >"$RUN_DIR/$name.logpos" || echo 0 >"$RUN_DIR/$name.logpos"
  rm -f "$RUN_DIR/$name.ready"
  start_daemon "$name" "${KAFKA_JAVA[@]}" kafka.Kafka "$props"
}

kafka_start() {
  local n
  _kafka_java_cmd
  # Nodes that are down start (all at once: a controller quorum needs a majority to elect).
  for n in "${KAFKA_NODES[@]}"; do _kafka_start_node "$n"; done
  wait_for 90 "Kafka ($KAFKA_PROFILE) on $(kafka_bootstrap_servers)" _kafka_settled
  kafka_healthy || {
    for n in "${KAFKA_NODES[@]}"; do tail -n 20 "$LOG_DIR/$(_kafka_name "$n").log" >&2; done
    die "Kafka did not start (see $LOG_DIR/kafka*.log)"
  }
  if [ "$KAFKA_PROFILE" = replicated ]; then
    printf 'STOCK_KAFKA_BOOTSTRAP_SERVERS=%s\nSTOCK_KAFKA_REPLICATION_FACTOR=%s\nSTOCK_KAFKA_MIN_INSYNC_REPLICAS=%s\n' \
      "$(kafka_bootstrap_servers)" "$KAFKA_RF" "$KAFKA_MIN_ISR" >"$KAFKA_ENV"
  else
    rm -f "$KAFKA_ENV"
  fi
}
# Every node healthy, or one of them died (then kafka_start reports it).
_kafka_settled() {
  local n
  kafka_healthy && return 0
  for n in "${KAFKA_NODES[@]}"; do pid_alive "$(_kafka_name "$n")" || return 0; done
  return 1
}

# Stops the nodes of either profile (whichever runs), in parallel.
kafka_stop() {
  local name
  for name in kafka kafka-1 kafka-2 kafka-3; do stop_daemon "$name" 30 & done
  wait
  for name in kafka kafka-1 kafka-2 kafka-3; do rm -f "$RUN_DIR/$name.logpos" "$RUN_DIR/$name.ready"; done
  rm -f "$KAFKA_ENV"
}

kafka_healthy() {
  local n
  for n in "${KAFKA_NODES[@]}"; do _kafka_node_healthy "$n" || return 1; done
}

# Fast path: once a launch was seen ready, run/<name>.ready holds its pid.
_kafka_node_healthy() {
  local name; name=$(_kafka_name "$1")
  pid_alive "$name" && port_open "$(_kafka_node_port "$1")" || return 1
  [ "$(cat "$RUN_DIR/$name.ready" 2>/dev/null)" = "$(cat "$RUN_DIR/$name.pid")" ] && return 0
  _kafka_ready "$1" && cp "$RUN_DIR/$name.pid" "$RUN_DIR/$name.ready"
}

# Ready = "Kafka Server started" logged since the launch AND (single node) the group coordinator
# has loaded every existing __consumer_offsets partition: that happens asynchronously after
# "started", and until then offset fetches/commits fail with NOT_COORDINATOR. In the replicated
# profile a node loads only the partitions it leads; clients retry NOT_COORDINATOR meanwhile.
_kafka_ready() {
  local name hits want
  name=$(_kafka_name "$1")
  [ -f "$RUN_DIR/$name.logpos" ] || return 1
  hits=$(tail -c +"$(($(cat "$RUN_DIR/$name.logpos") + 1))" "$LOG_DIR/$name.log" |
    grep -oE 'Kafka Server started|Finished loading of metadata from __consumer_offsets-[0-9]+' | sort -u) || true
  [[ $hits == *"Kafka Server started"* ]] || return 1
  [ "$KAFKA_PROFILE" = replicated ] && return 0
  want=$(compgen -G "$(_kafka_data 1)/logs/__consumer_offsets-*" | wc -l)
  [ "$(grep -c __consumer_offsets <<<"$hits")" -ge "$want" ]
}

kafka_where() {
  echo "PLAINTEXT://$(kafka_bootstrap_servers) (Kafka $KAFKA_VERSION KRaft, $KAFKA_PROFILE: ${#KAFKA_NODES[@]} node(s), RF $KAFKA_RF, min ISR $KAFKA_MIN_ISR)"
}
