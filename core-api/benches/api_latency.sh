#!/usr/bin/env bash
# API latency and memory of loco-api (issue 5, item 9): the app list's p99 at a fixed
# 500 requests/s on loopback, printed beside /healthz's p99 from the same run (the
# baseline: same process, same load generator, no database), and loco-api's idle RSS
# (VmRSS) after start-up and after the load. Targets: app list p99 < 10 ms; RSS <= 30 MB.
#
# Load generator: oha, not wrk. A p99 "at 500 requests/s" needs an open-loop generator
# that holds the rate and counts a late request from when it should have been sent;
# plain wrk is closed-loop (no rate flag; a Lua delay() only spaces requests per
# connection and hides queueing: coordinated omission). oha has -q 500 and
# --latency-correction, which is wrk2's semantics, and prints JSON percentiles.
#
# What it sets up, all throwaway: a release build of loco-api, a fresh database on the
# stack's Postgres, a KEK in a temp file, an org with 50 apps in one workspace, and an
# API token minted with `loco-api tokens create`.
#
# Usage: core-api/benches/api_latency.sh [--rate 500] [--duration 20s] [--apps 50]
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$ROOT"
RATE=500 DURATION=20s APPS=50
while [ $# -gt 0 ]; do
  case "$1" in
    --rate) RATE=$2; shift 2 ;;
    --duration) DURATION=$2; shift 2 ;;
    --apps) APPS=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "unknown argument $1; see --help" >&2; exit 2 ;;
  esac
done
say() { printf '%s\n' "bench: $*" >&2; }
TOOLS="$HOME/.cache/loco/cargo-tools"
export PATH="$TOOLS/bin:$PATH"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/loco/target}

for tool in curl jq psql; do
  command -v "$tool" >/dev/null || { say "$tool not found: apt-get install -y $tool (psql: postgresql-client)"; exit 1; }
done
if ! command -v oha >/dev/null; then
  say "installing oha into $TOOLS (once, a few minutes)"
  CARGO_TARGET_DIR="$HOME/.cache/loco/target-tools" cargo install oha --locked --root "$TOOLS"
fi
if [ -z "${DATABASE_URL:-}" ]; then
  eval "$(tests/minikube/stack env)"
fi

say "building loco-api (release)"
cargo build --quiet --release -p loco-api --bin loco-api
LOCO_API="$CARGO_TARGET_DIR/release/loco-api"

WORK=$(mktemp -d)
DB_NAME="loco_bench_$$"
ADMIN_URL="${DATABASE_URL%/*}/postgres"
export DATABASE_URL="${DATABASE_URL%/*}/$DB_NAME"
SERVER_PID=
cleanup() {
  if [ -n "$SERVER_PID" ]; then kill "$SERVER_PID" 2>/dev/null || true; wait "$SERVER_PID" 2>/dev/null || true; fi
  psql -q "$ADMIN_URL" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
fail() { cat "$WORK"/*.log >&2 2>/dev/null; say "$*"; exit 1; }
psql -q -v ON_ERROR_STOP=1 "$ADMIN_URL" -c "CREATE DATABASE $DB_NAME" >/dev/null

head -c 32 /dev/urandom | base64 >"$WORK/kek"
chmod 600 "$WORK/kek"
export LOCO_KEK_FILE="$WORK/kek" LOCO_LOG_FORMAT=json LOCO_LOG=warn,loco_api=info,loco_http=info,loco_deploy=info
"$LOCO_API" migrate 2>>"$WORK/cli.log" || fail "loco-api migrate failed"
read -r USER_ID ORG_ID <<<"$(psql -qtA -F' ' -v ON_ERROR_STOP=1 "$DATABASE_URL" <<'SQL'
WITH u AS (INSERT INTO users (provider, provider_uid, login) VALUES ('github', 'bench-1', 'bench') RETURNING id),
     o AS (INSERT INTO orgs (name) VALUES ('bench') RETURNING id),
     m AS (INSERT INTO memberships (org_id, user_id, role) SELECT o.id, u.id, 'owner' FROM o, u RETURNING org_id, user_id),
     r AS (INSERT INTO regions (provider, name) VALUES ('hetzner', 'fsn1') RETURNING id),
     c AS (INSERT INTO clusters (region_id, name, endpoint, credentials_ciphertext, credentials_nonce,
                                 dek_wrapped, dek_nonce, dek_kek_id, status)
           SELECT r.id, 'bench-cluster', 'https://127.0.0.1:6443', '\x00', decode(repeat('00', 24), 'hex'),
                  '\x00', decode(repeat('00', 24), 'hex'), 'none', 'healthy' FROM r RETURNING id)
SELECT m.user_id, m.org_id FROM m, c;
SQL
)"
TOKEN=$("$LOCO_API" tokens create --user "$USER_ID" --org "$ORG_ID" --scopes admin --ttl 1h --name bench 2>>"$WORK/cli.log") \
  || fail "loco-api tokens create failed"

"$LOCO_API" serve --listen 127.0.0.1:0 --app-create-rate-per-minute 100000 --app-create-burst 100000 \
  2>"$WORK/server.log" &
SERVER_PID=$!
ADDR=
for _ in $(seq 1 100); do
  ADDR=$(jq -r 'select(.addr != null) | .addr' "$WORK/server.log" 2>/dev/null | head -n1)
  [ -n "$ADDR" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || fail "loco-api serve exited"
  sleep 0.1
done
[ -n "$ADDR" ] || fail "loco-api logged no address"
BASE="http://$ADDR"
rss_mb() { awk '/^VmRSS/ { printf "%.1f", $2 / 1024 }' "/proc/$SERVER_PID/status"; }
sleep 1
RSS_START=$(rss_mb)

api() { curl -fsS -H "Authorization: Bearer $TOKEN" -H 'content-type: application/json' "$@"; }
REGION_ID=$(api "$BASE/v1/regions" | jq '.regions[0].id')
WS_ID=$(api -X POST "$BASE/v1/orgs/$ORG_ID/workspaces" -d "{\"name\":\"bench\",\"region_id\":$REGION_ID}" | jq .id)
for i in $(seq 1 "$APPS"); do
  api -X POST "$BASE/v1/orgs/$ORG_ID/workspaces/$WS_ID/apps" \
    -d "{\"name\":\"app-$i\",\"host\":\"app-$i.bench.example.com\",\"ports\":[{\"name\":\"http\",\"port\":8080,\"protocol\":\"http\",\"routed\":true}]}" >/dev/null
done
LIST="/v1/orgs/$ORG_ID/workspaces/$WS_ID/apps"
LISTED=$(api "$BASE$LIST?limit=200" | jq '.apps | length')
[ "$LISTED" -eq "$APPS" ] || fail "the list returned $LISTED apps, expected $APPS"

# One oha run: prints "p50_ms p99_ms success_ratio requests_per_sec".
load() {
  oha --no-tui --output-format json -q "$RATE" -z "$DURATION" -c 32 --latency-correction \
    -H "Authorization: Bearer $TOKEN" "$BASE$1" >"$WORK/oha.json"
  jq -r '[.latencyPercentiles.p50 * 1000, .latencyPercentiles.p99 * 1000, .summary.successRate, .summary.requestsPerSec]
         | map(. * 1000 | round / 1000) | @tsv' "$WORK/oha.json"
}
codes() { jq -c '.statusCodeDistribution' "$WORK/oha.json"; }
say "load: $RATE requests/s for $DURATION each, /healthz then the app list ($APPS apps)"
# A short warm-up so connection set-up and the pool's first connections are not measured.
oha --no-tui --output-format quiet -q 100 -z 2s -H "Authorization: Bearer $TOKEN" "$BASE$LIST" || true
read -r H50 H99 HOK HRPS < <(load /healthz)
HCODES=$(codes)
read -r A50 A99 AOK ARPS < <(load "$LIST")
ACODES=$(codes)
sleep 2
RSS_AFTER=$(rss_mb)

RATIO=$(awk -v a="$A99" -v h="$H99" 'BEGIN { if (h > 0) printf "%.1f", a / h; else print "n/a" }')
VERDICT_P99=$(awk -v a="$A99" 'BEGIN { print (a < 10) ? "ok" : "OVER" }')
VERDICT_RSS=$(awk -v s="$RSS_START" -v e="$RSS_AFTER" 'BEGIN { print (s <= 30 && e <= 30) ? "ok" : "OVER" }')
printf '\n%-44s %9s %9s %9s %8s  %s\n' "endpoint ($RATE req/s, $DURATION, oha)" "p50 ms" "p99 ms" "req/s" "success" "status codes"
printf '%-44s %9s %9s %9s %8s  %s\n' "GET /healthz (baseline)" "$H50" "$H99" "$HRPS" "$HOK" "$HCODES"
printf '%-44s %9s %9s %9s %8s  %s\n' "GET $LIST" "$A50" "$A99" "$ARPS" "$AOK" "$ACODES"
printf 'app list p99 / healthz p99: %sx; app list p99 < 10 ms: %s\n' "$RATIO" "$VERDICT_P99"
printf 'loco-api VmRSS: %s MB after start-up, %s MB after the load; <= 30 MB: %s\n' "$RSS_START" "$RSS_AFTER" "$VERDICT_RSS"
