# PostgreSQL 15 + TimescaleDB (Apache edition) on 127.0.0.1:<db_settings.port>, data in $DATA_DIR/postgres.
# Uses Debian's postgresql-15 binaries but its own cluster, port and socket dir; Debian's packaged
# 15/main cluster is never started or touched. TimescaleDB is built from Debian trixie's source package
# (not in bookworm) and the staged build is cached in $CACHE_DIR/timescaledb.
# See /work/shared/PLATFORM-NOTES.md "PostgreSQL + TimescaleDB".

PG_BIN=/usr/lib/postgresql/15/bin
PG_DATA=$DATA_DIR/postgres
PG_SOCK=$RUN_DIR/pgsock
PG_LOG=$LOG_DIR/postgres.log
TSDB_CACHE=$CACHE_DIR/timescaledb
TSDB_STAGE=$TSDB_CACHE/stage   # `make install DESTDIR=` tree; .complete marks a finished build

pg_port() { cfg db_settings port STOCK_DB_PORT; }

# Serialise install/start across concurrent `services.sh up` runs (they would share one build tree and
# data dir). Lock on fd 8, which as_pg closes: an inherited copy in the postmaster would hold it forever.
pg_lock() { exec 8>>"$STATE_DIR/postgres.lock"; flock -w 900 8 || die "timed out on $STATE_DIR/postgres.lock"; }
pg_unlock() { exec 8>&-; }

# Run as the postgres OS user (PostgreSQL refuses root); cd / so it never lacks access to the cwd.
as_pg() { (cd / && runuser -u postgres -- "$@") 8>&-; }

# Admin psql over our private socket, peer-authenticated as the postgres superuser.
pg_admin_psql() { as_pg "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h "$PG_SOCK" -p "$(pg_port)" "$@"; }

tsdb_staged_version() {
  sed -n "s/^default_version = '\(.*\)'/\1/p" "$TSDB_STAGE/usr/share/postgresql/15/extension/timescaledb.control" 2>/dev/null
}

tsdb_installed() {  # the staged build is what /usr currently has
  local v; v=$(tsdb_staged_version)
  [ -n "$v" ] && [ -f "/usr/lib/postgresql/15/lib/timescaledb-$v.so" ] &&
    cmp -s "$TSDB_STAGE/usr/share/postgresql/15/extension/timescaledb.control" \
      /usr/share/postgresql/15/extension/timescaledb.control
}

tsdb_build() {
  local apt_dir=$TSDB_CACHE/apt src_dir=$TSDB_CACHE/src pg_ver
  # Private apt config: a trixie deb-src index that never touches /etc/apt or /var/lib/apt.
  local apt_opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o Dir::Etc::sourceparts=-
    -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o APT::Sandbox::User=root)
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$src_dir"
  echo 'deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian trixie main' \
    >"$apt_dir/sources.list"

  apt_install cmake gcc make libssl-dev dpkg-dev xz-utils
  # Headers pinned to the installed server: unpinned, apt would also upgrade postgresql-15.
  pg_ver=$(dpkg-query -W -f='${Version}' postgresql-15)
  [ "$(dpkg-query -W -f='${Version}' postgresql-server-dev-15 2>/dev/null || true)" = "$pg_ver" ] ||
    apt_install "postgresql-server-dev-15=$pg_ver"

  if ! compgen -G "$src_dir/timescaledb_*.dsc" >/dev/null; then
    log "fetching timescaledb source from Debian trixie"
    apt-get "${apt_opts[@]}" update >>"$LOG_DIR/apt.log" 2>&1 || die "private apt-get update failed (see $LOG_DIR/apt.log)"
    (cd "$src_dir" && apt-get "${apt_opts[@]}" source --download-only timescaledb) >>"$LOG_DIR/apt.log" 2>&1 \
      || die "apt-get source timescaledb failed (see $LOG_DIR/apt.log)"
  fi
  rm -rf "$src_dir/tree" "$TSDB_STAGE"
  dpkg-source -x "$(ls "$src_dir"/timescaledb_*.dsc | tail -n 1)" "$src_dir/tree" >>"$TSDB_CACHE/build.log" 2>&1 \
    || die "dpkg-source -x failed (see $TSDB_CACHE/build.log)"

  log "building TimescaleDB (log: $TSDB_CACHE/build.log)"
  # Explicit PG_CONFIG: /usr/bin/pg_config (libpq-dev) would not describe the server.
  ( cd "$src_dir/tree" &&
    cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DPG_CONFIG="$PG_BIN/pg_config" \
      -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF -DWARNINGS_AS_ERRORS=OFF &&
    make -C build -j"$(nproc)" &&
    make -C build install DESTDIR="$TSDB_STAGE" ) >>"$TSDB_CACHE/build.log" 2>&1 \
    || die "TimescaleDB build failed (see $TSDB_CACHE/build.log)"
  touch "$TSDB_STAGE/.complete"
}

postgres_install() {
  pg_lock
  if [ ! -x "$PG_BIN/postgres" ]; then
    # On a fresh install Debian creates cluster 15/main (port 5432, /var/run/postgresql); we never
    # start it and use our own port and socket, so it is not in the way whether it runs or not.
    apt_install postgresql-15
  fi
  [ -f "$TSDB_STAGE/.complete" ] || tsdb_build
  if ! tsdb_installed; then
    log "installing TimescaleDB $(tsdb_staged_version) into /usr (from $TSDB_STAGE)"
    cp -a "$TSDB_STAGE/usr/." /usr/
  fi
  pg_unlock
}

# postgres must be able to traverse every directory above its data/run/log dirs.
pg_make_path_traversable() {
  local d=$STATE_DIR
  while [ "$d" != / ]; do
    if ! runuser -u postgres -- test -x "$d"; then log "chmod o+x $d (postgres must traverse it)"; chmod o+x "$d"; fi
    d=$(dirname "$d")
  done
}

postgres_start() {
  local port user pw db
  port=$(pg_port); user=$(cfg db_settings user STOCK_DB_USER)
  pw=$(cfg db_settings password STOCK_DB_PASSWORD); db=$(cfg db_settings dbname STOCK_DB_DBNAME)

  pg_lock
  pg_make_path_traversable
  mkdir -p "$PG_DATA" "$PG_SOCK"; touch "$PG_LOG"
  chown postgres:postgres "$PG_DATA" "$PG_SOCK" "$PG_LOG"
  chmod 700 "$PG_DATA" "$PG_SOCK"

  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "initdb $PG_DATA"
    as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --locale=C.UTF-8 \
      --auth-local=peer --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 || die "initdb failed (see $PG_LOG)"
    echo "include 'stock.conf'" >>"$PG_DATA/postgresql.conf"
  fi
  # Regenerated on every start so config changes (e.g. the port) apply; later settings win.
  cat >"$PG_DATA/stock.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_SOCK'
max_connections = 200
shared_buffers = 256MB
# TimescaleDB runs a scheduler worker per database (tests create many); keep slots for parallel query.
max_worker_processes = 32
password_encryption = 'scram-sha-256'
shared_preload_libraries = 'timescaledb'
timescaledb.telemetry_level = off
EOF
  chown postgres:postgres "$PG_DATA/stock.conf"

  # pg_ctl detaches the postmaster (own session, output to -l file), so it outlives this script.
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null || die "pg_ctl start failed (see $PG_LOG)"
  fi
  head -n 1 "$PG_DATA/postmaster.pid" >"$RUN_DIR/postgres.pid"
  wait_for 30 "postgres on port $port" postgres_healthy || die "postgres not healthy (see $PG_LOG)"

  # Role/database/extension, idempotently. The password travels via the environment (\getenv), not argv,
  # and this session does not log statements.
  # No template carries TimescaleDB: its launcher starts a scheduler in every database that has the
  # extension, templates included, and a scheduler holding the template makes CREATE DATABASE fail
  # ("source database is being accessed by other users"). New databases come from template0 and
  # their owner creates the extension (it is a trusted extension), as migration 0001 does.
  STOCK_PG_ROLE_PW=$pw pg_admin_psql -d postgres -v user="$user" -v db="$db" <<'SQL'
\getenv pw STOCK_PG_ROLE_PW
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
SET client_min_messages = warning;
SELECT format('CREATE ROLE %I', :'user') WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'user') \gexec
SELECT format('ALTER ROLE %I LOGIN CREATEDB PASSWORD %L', :'user', :'pw') \gexec
\unset pw
SELECT format('CREATE DATABASE %I OWNER %I TEMPLATE template0', :'db', :'user')
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
-- Earlier versions of this script put the extension in template1 and a template database.
\connect template1
DROP EXTENSION IF EXISTS timescaledb;
\connect postgres
SELECT format('ALTER DATABASE %I IS_TEMPLATE false', datname) FROM pg_database WHERE datname = 'stocks_template' \gexec
SELECT format('DROP DATABASE %I WITH (FORCE)', datname) FROM pg_database WHERE datname = 'stocks_template' \gexec
\connect :db
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS timescaledb;
UPDATE _timescaledb_config.bgw_job SET scheduled = false
  WHERE proc_name = 'policy_job_stat_history_retention' AND current_setting('timescaledb.license') = 'apache';
SQL
  pg_unlock
}

postgres_stop() {
  if [ -f "$PG_DATA/PG_VERSION" ] && as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -w -t 60 stop -m fast >/dev/null
  fi
  rm -f "$RUN_DIR/postgres.pid"
}

postgres_healthy() {
  # Our postmaster is alive and the port answers (not merely some other server on it).
  [ -f "$PG_DATA/postmaster.pid" ] && kill -0 "$(head -n 1 "$PG_DATA/postmaster.pid")" 2>/dev/null &&
    "$PG_BIN/pg_isready" -q -t 3 -h 127.0.0.1 -p "$(pg_port)"
}

postgres_where() {
  local ts
  ts=$(pg_admin_psql -At -d "$(cfg db_settings dbname STOCK_DB_DBNAME)" -c \
    "SELECT extversion || ' ' || current_setting('timescaledb.license') FROM pg_extension WHERE extname = 'timescaledb'" \
    2>/dev/null || true)
  echo "postgresql://$(cfg db_settings user STOCK_DB_USER)@127.0.0.1:$(pg_port)/$(cfg db_settings dbname STOCK_DB_DBNAME) (TimescaleDB ${ts:-?})"
}
