# Search engine speaking the Elasticsearch REST API: OpenSearch 2.19 (the Apache-2.0 fork of Elasticsearch 7.10;
# 2.19 is the newest line for Java 17), one node on 127.0.0.1:<search_settings.port>, plain HTTP.
# Nothing packages a server (see /work/shared/PLATFORM-NOTES.md "Search engine"), and Elastic does not publish its
# own modules (lang-painless, analysis-common) or launcher to Maven Central; OpenSearch publishes the server and
# every module jar there. search_install assembles them into a tar-distribution-like tree,
# $CACHE_DIR/opensearch-<version>/{lib,modules/<name>,config,plugins}, generating each module's
# plugin-descriptor.properties (Maven jars do not carry it) and copying its plugin-security.policy from
# infra/search/modules/. Config templates: infra/search/config/. Data: $DATA_DIR/search; log: $LOG_DIR/search.log.
# OpenSearch refuses to run as root, so the JVM runs as the system user 'opensearch' (created if missing).

OS_VERSION=2.19.6
OS_SRC=$ROOT_DIR/infra/search
OS_HOME=$CACHE_DIR/opensearch-$OS_VERSION
OS_DATA=$DATA_DIR/search
OS_LOGS=$LOG_DIR/search
OS_USER=opensearch
OS_MAIN=org.opensearch.bootstrap.OpenSearch
# module dir | Maven groupId:artifactId | plugin class | extended plugins | description (as in OpenSearch's build)
OS_MODULES=(
  "transport-netty4|org.opensearch.plugin:transport-netty4-client|org.opensearch.transport.Netty4Plugin||Netty 4 based transport implementation"
  "lang-painless|org.opensearch.plugin:lang-painless|org.opensearch.painless.PainlessPlugin||An easy, safe and fast scripting language for OpenSearch"
  "analysis-common|org.opensearch.plugin:analysis-common|org.opensearch.analysis.common.CommonAnalysisPlugin|lang-painless|Adds \"built in\" analyzers to OpenSearch."
  "reindex|org.opensearch.plugin:reindex-client|org.opensearch.index.reindex.ReindexPlugin||The Reindex module adds APIs to reindex from one index to another or update documents in place."
  "mapper-extras|org.opensearch.plugin:mapper-extras-client|org.opensearch.index.mapper.MapperExtrasPlugin||Adds advanced field mappers"
  "parent-join|org.opensearch.plugin:parent-join-client|org.opensearch.join.ParentJoinPlugin||This module adds the support parent-child queries and aggregations"
  "aggs-matrix-stats|org.opensearch.plugin:aggs-matrix-stats-client|org.opensearch.search.aggregations.matrix.MatrixAggregationPlugin||Adds aggregations whose input are a list of numeric fields and output includes a matrix."
  "lang-mustache|org.opensearch.plugin:lang-mustache-client|org.opensearch.script.mustache.MustachePlugin||Mustache scripting integration for OpenSearch"
  "ingest-common|org.opensearch.plugin:ingest-common|org.opensearch.ingest.common.IngestCommonPlugin|lang-painless|Module for ingest processors that do not require additional security permissions or have large dependencies and resources"
)

search_port() { cfg search_settings port STOCK_SEARCH_PORT; }

_search_stamp() {
  { echo "$OS_VERSION"; printf '%s\n' "${OS_MODULES[@]}"; cat "$OS_SRC/pom.xml" "$OS_SRC"/config/* "$OS_SRC"/modules/*/*; } | sha256sum | cut -d' ' -f1
}

# _search_mvn OUT_DIR [GROUP ARTIFACT]: copy the server's runtime jars (plus one module's) into OUT_DIR.
_search_mvn() {
  local out=$1 args=()
  [ $# -ge 3 ] && args=(-Dos.module.group="$2" -Dos.module.artifact="$3")
  mvn -B -q -f "$OS_SRC/pom.xml" dependency:copy-dependencies -Dopensearch.version="$OS_VERSION" "${args[@]}" \
      -DoutputDirectory="$out" -Dmaven.repo.local="$CACHE_DIR/m2" >>"$LOG_DIR/search-install.log" 2>&1
}

_search_jar_has_class() {  # JAR CLASSNAME
  python3 - "$1" "$2" <<'PY'
import sys, zipfile
sys.exit(0 if sys.argv[2].replace('.', '/') + '.class' in zipfile.ZipFile(sys.argv[1]).namelist() else 1)
PY
}

search_install() {
  local stamp tmp=$OS_HOME.tmp spec name ga cls ext desc mdir jar base
  stamp=$(_search_stamp)
  [ "$(cat "$OS_HOME/.complete" 2>/dev/null)" = "$stamp" ] && return 0
  command -v java >/dev/null || apt_install openjdk-17-jre-headless
  command -v mvn >/dev/null || apt_install maven
  log "assembling OpenSearch $OS_VERSION from Maven Central into $OS_HOME (log: $LOG_DIR/search-install.log)"
  rm -rf "$tmp"; mkdir -p "$tmp/bin" "$tmp/modules" "$tmp/plugins" "$tmp/config"  # bin/: Security checks it exists
  _search_mvn "$tmp/lib" || die "resolving the OpenSearch server failed (see $LOG_DIR/search-install.log)"
  for spec in "${OS_MODULES[@]}"; do
    IFS='|' read -r name ga cls ext desc <<<"$spec"
    mdir=$tmp/modules/$name
    _search_mvn "$mdir" "${ga%%:*}" "${ga#*:}" || die "resolving module $ga failed (see $LOG_DIR/search-install.log)"
    # Keep only what lib/ lacks: the same library twice on the classpath fails OpenSearch's jar-hell check.
    for jar in "$mdir"/*.jar; do
      base=$(basename "$jar" | sed -E 's/-[0-9][^-]*(-[A-Za-z0-9.]+)?\.jar$//')
      if compgen -G "$tmp/lib/$base-[0-9]*.jar" >/dev/null; then rm -f "$jar"; fi
    done
    _search_jar_has_class "$mdir/${ga#*:}-$OS_VERSION.jar" "$cls" || die "module $name: no class $cls in ${ga#*:}-$OS_VERSION.jar"
    {
      echo "name=$name"
      echo "description=$desc"
      echo "version=$OS_VERSION"
      echo "classname=$cls"
      echo "opensearch.version=$OS_VERSION"
      echo "java.version=11"
      if [ -n "$ext" ]; then echo "extended.plugins=$ext"; fi
      echo "has.native.controller=false"
    } >"$mdir/plugin-descriptor.properties"
    # Maven jars carry no security policy either; the ones needing permissions have theirs in infra/search/modules/
    if [ -f "$OS_SRC/modules/$name/plugin-security.policy" ]; then cp "$OS_SRC/modules/$name/plugin-security.policy" "$mdir/"; fi
  done
  cp "$OS_SRC"/config/* "$tmp/config/"
  chmod -R a+rX "$tmp"
  echo "$stamp" >"$tmp/.complete"
  rm -rf "$OS_HOME" && mv "$tmp" "$OS_HOME"
}

_search_ensure_user() {
  id -u "$OS_USER" >/dev/null 2>&1 && return 0
  log "creating system user $OS_USER (OpenSearch refuses to run as root)"
  useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin "$OS_USER" \
    || die "useradd $OS_USER failed"
}

# The opensearch user must traverse every directory above its home, data and log dirs.
_search_make_traversable() {
  local d
  for d in "$@"; do
    while [ "$d" != / ]; do
      if ! setpriv --reuid="$OS_USER" --regid="$OS_USER" --init-groups test -x "$d"; then
        log "chmod o+x $d ($OS_USER must traverse it)"; chmod o+x "$d"
      fi
      d=$(dirname "$d")
    done
  done
}

# JVM command line as an array (start_daemon runs it through setsid, so it cannot be a function).
_search_java_cmd() {
  local conf=$OS_DATA/config
  mapfile -t OS_JVM_OPTS < <(sed -e 's/#.*//' -e 's/^[[:space:]]*//' -e 's/[[:space:]]*$//' "$conf/jvm.options" | grep -v '^$')
  # setpriv execs java directly (no forking su/runuser in between), so the recorded pid is the JVM's
  # and a TERM from stop_daemon reaches it for a clean shutdown.
  OS_JAVA=(setpriv --reuid="$OS_USER" --regid="$OS_USER" --init-groups
    java "${OS_JVM_OPTS[@]}"
    -Djava.io.tmpdir="$OS_DATA/tmp" -XX:HeapDumpPath="$OS_DATA" -XX:ErrorFile="$OS_LOGS/hs_err_pid%p.log"
    "-Xlog:gc*,gc+age=trace,safepoint:file=$OS_LOGS/gc.log:utctime,pid,tags:filecount=4,filesize=16m"
    -Dopensearch.path.home="$OS_HOME" -Dopensearch.path.conf="$conf"
    -Dopensearch.distribution.type=tar -Dopensearch.bundled_jdk=false
    -cp "$OS_HOME/lib/*" "$OS_MAIN")
}

search_start() {
  local port tport mmap=true
  port=$(search_port); tport=$((port + 100))
  if ! pid_alive search; then
    for p in "$port" "$tport"; do port_open "$p" && die "port $p is already in use by another process"; done
    _search_ensure_user
    mkdir -p "$OS_DATA/data" "$OS_DATA/tmp" "$OS_DATA/config" "$OS_LOGS"
    # Regenerated on every start so config changes (e.g. the port) apply. The config dir is writable for the
    # node: it creates its (empty) opensearch.keystore there on first start.
    [ "$(cat /proc/sys/vm/max_map_count 2>/dev/null || echo 0)" -ge 262144 ] || mmap=false
    sed -e "s|@DATA@|$OS_DATA/data|" -e "s|@LOGS@|$OS_LOGS|" -e "s|@PORT@|$port|" \
        -e "s|@TRANSPORT_PORT@|$tport|" -e "s|@ALLOW_MMAP@|$mmap|" \
      "$OS_HOME/config/opensearch.yml.tmpl" >"$OS_DATA/config/opensearch.yml"
    cp "$OS_HOME/config/jvm.options" "$OS_HOME/config/log4j2.properties" "$OS_DATA/config/"
    chown -R "$OS_USER:$OS_USER" "$OS_DATA" "$OS_LOGS"
    _search_make_traversable "$OS_HOME" "$OS_DATA" "$OS_LOGS"
    _search_java_cmd
    # cd: the JVM's working directory must be accessible to the opensearch user. OpenSearch warns below
    # 65535 open files; raise the limit where allowed (not in every sandbox).
    (cd "$OS_DATA" && { ulimit -n 65535 2>/dev/null || true; } && start_daemon search "${OS_JAVA[@]}")
  fi
  wait_for 180 "OpenSearch on port $port" _search_settled
  search_healthy || { tail -n 40 "$LOG_DIR/search.log" >&2; die "OpenSearch did not start (see $LOG_DIR/search.log)"; }
}
_search_settled() { search_healthy || ! pid_alive search; }

search_stop() { stop_daemon search 60; }

# Healthy: our JVM is alive and the cluster health answers green or yellow (yellow: replicas cannot be
# assigned on one node).
search_healthy() {
  local body
  pid_alive search || return 1
  body=$(curl -fsS -m 2 "http://127.0.0.1:$(search_port)/_cluster/health" 2>/dev/null) || return 1
  [[ $body =~ \"status\":\"(green|yellow)\" ]]
}

search_where() { echo "http://127.0.0.1:$(search_port) (OpenSearch $OS_VERSION)"; }
