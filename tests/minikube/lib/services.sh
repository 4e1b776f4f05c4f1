# Postgres, the OCI registry, the S3 server and Prometheus. Sourced by ./stack.

PG_USER=loco PG_PASSWORD=loco PG_DB=loco
S3_ACCESS_KEY=loco-test-access S3_SECRET_KEY=loco-test-secret-key S3_BUCKET=loco-snapshots S3_REGION=us-east-1

pg_bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] || continue
    local v; v=$(basename "$(dirname "$d")")
    [ "$v" -ge 15 ] 2>/dev/null && echo "$d"
  done | sort -V | tail -n1
}

# Run Postgres tools as the postgres user when we are root (Postgres refuses root).
# From /: the postgres user may not enter the caller's directory (a private mktemp clone).
as_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }

pg_ready() { as_pg "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$POSTGRES_PORT"; }

up_postgres() {
  PGBIN=$(pg_bindir)
  [ -n "$PGBIN" ] || die "PostgreSQL 15+ server binaries not found in /usr/lib/postgresql/*/bin (apt-get install postgresql)"
  local data="$STATE/postgres/data" archive="$STATE/postgres/wal-archive" sock="$STATE/postgres/run"
  if [ -f "$data/postmaster.pid" ] && pg_ready; then return 0; fi
  require_free_port postgres "$POSTGRES_PORT" LOCO_STACK_POSTGRES_PORT
  mkdir -p "$STATE/postgres" "$archive" "$sock"
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$STATE/postgres"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "initialising Postgres in $data"
    local pw="$STATE/postgres/pwfile"
    echo "$PG_PASSWORD" >"$pw"; [ "$(id -u)" = 0 ] && chown postgres "$pw"
    as_pg "$PGBIN/initdb" -D "$data" -U "$PG_USER" --pwfile="$pw" -A scram-sha-256 -E UTF8 --locale=C.UTF-8 \
      >"$LOGS/postgres-initdb.log" 2>&1 || die "initdb failed; see $LOGS/postgres-initdb.log"
    rm -f "$pw"
    # Test bed tuning: no fsync (throwaway data), many connections (one database per
    # sqlx test), and WAL archiving on so point-in-time recovery can be tested.
    cat >>"$data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $POSTGRES_PORT
unix_socket_directories = '$sock'
max_connections = 300
fsync = off
full_page_writes = off
synchronous_commit = off
wal_level = replica
archive_mode = on
archive_command = 'test ! -f $archive/%f && cp %p $archive/%f'
archive_timeout = 60
log_min_messages = warning
CONF
  fi
  : >"$LOGS/postgres.log"; [ "$(id -u)" = 0 ] && chown postgres "$LOGS/postgres.log"
  as_pg "$PGBIN/pg_ctl" -D "$data" -l "$LOGS/postgres.log" -w -t 60 start >/dev/null \
    || { tail -n 15 "$LOGS/postgres.log" >&2; die "Postgres did not start; its log is $LOGS/postgres.log"; }
  echo postgres >"$RUN/postgres.started"
  PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$PG_USER" -d postgres -tAc \
    "SELECT 1 FROM pg_database WHERE datname='$PG_DB'" | grep -q 1 \
    || PGPASSWORD=$PG_PASSWORD "$PGBIN/createdb" -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$PG_USER" "$PG_DB" \
    || die "creating database $PG_DB failed"
  say "Postgres $(basename "$(dirname "$PGBIN")") ready on 127.0.0.1:$POSTGRES_PORT (WAL archive: $archive)"
}

down_postgres() {
  [ -f "$RUN/postgres.started" ] || return 0
  PGBIN=$(pg_bindir)
  as_pg "$PGBIN/pg_ctl" -D "$STATE/postgres/data" -m fast -w stop >/dev/null 2>&1 && say "stopped postgres"
  rm -f "$RUN/postgres.started"
}

up_registry() {
  running registry && return 0
  require_free_port registry "$REGISTRY_PORT" LOCO_STACK_REGISTRY_PORT
  mkdir -p "$STATE/registry/data"
  cat >"$STATE/registry/config.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$REGISTRY_PORT
CONF
  start registry "$LOGS/registry.log" "$LOCO_CACHE/bin/distribution-$DISTRIBUTION_VERSION/registry" serve "$STATE/registry/config.yml"
  wait_for registry "$LOGS/registry.log" 30 curl -fsS "http://127.0.0.1:$REGISTRY_PORT/v2/"
  say "OCI registry (distribution $DISTRIBUTION_VERSION, deletes enabled) on 127.0.0.1:$REGISTRY_PORT"
}

# A second registry process over the same storage, read-only and behind htpasswd
# (bcrypt) basic auth: pull secrets can be tested against it (a wrong password fails the
# pull). User $REGISTRY_AUTH_USER, password generated once into $REGISTRY_AUTH_PASSWORD_FILE.
REGISTRY_AUTH_USER=loco-pull
REGISTRY_AUTH_PASSWORD_FILE="$STATE/registry/pull-password"

up_registry_auth() {
  running registry-auth && return 0
  command -v htpasswd >/dev/null || die "htpasswd not found (apt-get install apache2-utils)"
  require_free_port "registry (auth)" "$REGISTRY_AUTH_PORT" LOCO_STACK_REGISTRY_AUTH_PORT
  mkdir -p "$STATE/registry"
  [ -s "$REGISTRY_AUTH_PASSWORD_FILE" ] || (umask 077 && head -c 18 /dev/urandom | base64 | tr '/+' '_-' >"$REGISTRY_AUTH_PASSWORD_FILE")
  htpasswd -iBn "$REGISTRY_AUTH_USER" <"$REGISTRY_AUTH_PASSWORD_FILE" >"$STATE/registry/htpasswd" 2>/dev/null \
    || die "htpasswd failed writing $STATE/registry/htpasswd"
  cat >"$STATE/registry/config-auth.yml" <<CONF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry/data
  maintenance:
    uploadpurging:
      enabled: false
    readonly:
      enabled: true
auth:
  htpasswd:
    realm: loco-test
    path: $STATE/registry/htpasswd
http:
  addr: 127.0.0.1:$REGISTRY_AUTH_PORT
CONF
  start registry-auth "$LOGS/registry-auth.log" "$LOCO_CACHE/bin/distribution-$DISTRIBUTION_VERSION/registry" serve "$STATE/registry/config-auth.yml"
  # 401 without credentials is the ready answer.
  wait_for registry-auth "$LOGS/registry-auth.log" 30 sh -c "curl -sS -o /dev/null -w '%{http_code}' http://127.0.0.1:$REGISTRY_AUTH_PORT/v2/ | grep -q 401"
  say "OCI registry with basic auth (read-only, same storage) on 127.0.0.1:$REGISTRY_AUTH_PORT (user $REGISTRY_AUTH_USER, password in $REGISTRY_AUTH_PASSWORD_FILE)"
}

# Empty-body requests only: the header is the SHA-256 of an empty payload.
s3_curl() {
  curl -fsS --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" "$@"
}

up_s3() {
  if ! running s3; then
    require_free_port "S3 (versitygw)" "$S3_PORT" LOCO_STACK_S3_PORT
    mkdir -p "$STATE/s3/data" "$STATE/s3/meta"
    start s3 "$LOGS/s3.log" "$LOCO_CACHE/bin/versitygw-$VERSITYGW_VERSION/versitygw" \
      --access "$S3_ACCESS_KEY" --secret "$S3_SECRET_KEY" --region "$S3_REGION" --port "127.0.0.1:$S3_PORT" \
      posix --sidecar "$STATE/s3/meta" "$STATE/s3/data"
    wait_for s3 "$LOGS/s3.log" 30 s3_curl "http://127.0.0.1:$S3_PORT/"
  fi
  if ! s3_curl -o /dev/null -I "http://127.0.0.1:$S3_PORT/$S3_BUCKET" 2>/dev/null; then
    s3_curl -X PUT "http://127.0.0.1:$S3_PORT/$S3_BUCKET" >/dev/null \
      || die "creating bucket $S3_BUCKET failed; see $LOGS/s3.log"
  fi
  say "S3 (versitygw $VERSITYGW_VERSION) on 127.0.0.1:$S3_PORT, bucket $S3_BUCKET"
}

up_prometheus() {
  running prometheus && return 0
  command -v prometheus >/dev/null || die "prometheus not found (apt-get install prometheus)"
  require_free_port prometheus "$PROMETHEUS_PORT" LOCO_STACK_PROMETHEUS_PORT
  mkdir -p "$STATE/prometheus/data" "$STATE/prometheus/targets"
  # Tests and demos register loco processes by writing <name>.json files into targets/.
  cat >"$STATE/prometheus/prometheus.yml" <<CONF
global:
  scrape_interval: 2s
  scrape_timeout: 1s
scrape_configs:
  - job_name: loco
    file_sd_configs:
      - files: ['$STATE/prometheus/targets/*.json']
        refresh_interval: 1s
  - job_name: prometheus
    static_configs:
      - targets: ['127.0.0.1:$PROMETHEUS_PORT']
CONF
  start prometheus "$LOGS/prometheus.log" prometheus \
    --config.file "$STATE/prometheus/prometheus.yml" --storage.tsdb.path "$STATE/prometheus/data" \
    --web.listen-address "127.0.0.1:$PROMETHEUS_PORT" --storage.tsdb.retention.time 2d --web.enable-lifecycle
  wait_for prometheus "$LOGS/prometheus.log" 30 curl -fsS "http://127.0.0.1:$PROMETHEUS_PORT/-/ready"
  say "Prometheus $(prometheus --version 2>&1 | sed -n '1s/prometheus, version \([^ ]*\).*/\1/p') on 127.0.0.1:$PROMETHEUS_PORT (targets: $STATE/prometheus/targets)"
}
