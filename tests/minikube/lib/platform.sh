# The bed's platform layer through the product's own path (issue 16, item 4): loco-api,
# built from this tree, records the bed as cluster `test-bed` in a database of its own
# (loco_bed) and runs `loco-api platform apply --no-chart`, which applies the pinned
# Gateway API CRDs, GatewayClass loco (Traefik's controller name) and Gateway
# loco-system/loco. The bed adds only what an operator adds by hand: the Gateway's TLS
# Secret. The chart is not installed here (tests/chart-install does that with loco-api's
# image); loco-api runs beside the bed in the tests.

BED_DB=loco_bed
BED_CLUSTER=test-bed

# The GatewayClass controller: Traefik's on the stack's own control plane; another
# cluster (LOCO_TEST_KUBECONFIG) names its implementation's.
GATEWAY_CONTROLLER=${LOCO_STACK_GATEWAY_CONTROLLER:-traefik.io/gateway-controller}

# build_loco_api : builds loco-api (debug) from this tree and prints its path. Cargo waits
# for any other build of the same target directory (tests/all builds in parallel).
build_loco_api() {
  local root; root=$(cd "$HERE/../.." && pwd)
  local target=${CARGO_TARGET_DIR:-$LOCO_CACHE/target}
  local log="$LOCO_CACHE/build-logs/stack-loco-api.log"
  command -v cargo >/dev/null || die "cargo not found: the bed's platform layer is installed by loco-api, built from this tree (install Rust with rustup)"
  mkdir -p "$LOCO_CACHE/build-logs"
  say "building loco-api for the platform layer (debug; waits for any cargo build of $target; log: $log)"
  # Offline query data (.sqlx/): the caller's DATABASE_URL is not the build's business.
  (cd "$root" && CARGO_TARGET_DIR=$target SQLX_OFFLINE=${SQLX_OFFLINE:-true} \
    cargo build -p loco-api --bin loco-api -p loco-resurrector --bin loco-resurrect --locked) >"$log" 2>&1 \
    || { tail -n 30 "$log" >&2; die "building loco-api failed; full log: $log"; }
  echo "$target/debug/loco-api"
}

bed_psql() { PGPASSWORD=$PG_PASSWORD "$PGBIN/psql" -h 127.0.0.1 -p "$POSTGRES_PORT" -U "$PG_USER" -d postgres -v ON_ERROR_STOP=1 -qtA "$@"; }

# bed_loco STEP ARGS... : loco-api against loco_bed; stdout is its answer, stderr a log
# shown on failure. The database URL and the KEK reach it through the environment, never
# the command line.
bed_loco() {
  local step=$1; shift
  if ! DATABASE_URL="postgres://$PG_USER:$PG_PASSWORD@127.0.0.1:$POSTGRES_PORT/$BED_DB" \
    LOCO_KEK_FILE="$STATE/platform/kek" LOCO_LOG=warn LOCO_LOG_FORMAT=text \
    "$LOCO_API_BIN" "$@" 2>"$LOGS/platform-$step.log"; then
    sed 's/^/  /' "$LOGS/platform-$step.log" >&2
    die "loco-api $1 $2 failed (log: $LOGS/platform-$step.log)"
  fi
}

# The kubeconfig loco installs with: the bed's loco-installer client certificate, which
# outlives an emptied etcd (stack wipe), or the cluster of LOCO_TEST_KUBECONFIG
# (certificates inline, no exec plugin: loco-api refuses those).
bed_installer_kubeconfig() {
  if [ -n "${LOCO_TEST_KUBECONFIG:-}" ]; then echo "$LOCO_TEST_KUBECONFIG"; else echo "$KDIR/loco-installer.kubeconfig"; fi
}

# The bed's database: made once, with a KEK of its own kept beside it (mode 600). A KEK
# without its database or the other way round starts both again: the sealed cluster
# credentials cannot be opened with another key.
bed_database() {
  local dir="$STATE/platform"
  mkdir -p "$dir" && chmod 700 "$dir"
  PGBIN=$(pg_bindir)
  pg_ready || die "Postgres is not running (tests/minikube/stack up)"
  local have; have=$(bed_psql -c "SELECT 1 FROM pg_database WHERE datname='$BED_DB'") \
    || die "could not ask Postgres for database $BED_DB; see $LOGS/postgres.log"
  if [ "$have" != 1 ] || [ ! -s "$dir/kek" ]; then
    bed_psql -c "DROP DATABASE IF EXISTS $BED_DB WITH (FORCE)" -c "CREATE DATABASE $BED_DB" \
      || die "could not create database $BED_DB"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$dir/kek")
    say "database $BED_DB created, with its KEK in $dir/kek (mode 600)"
  fi
  bed_loco migrate migrate
}

cmd_platform() {
  [ $# -eq 0 ] || die "platform takes no arguments"
  if [ -n "${LOCO_TEST_KUBECONFIG:-}" ]; then
    KUBECONFIG_USE=$LOCO_TEST_KUBECONFIG
    kubectl version >/dev/null 2>&1 || die "the cluster of LOCO_TEST_KUBECONFIG=$LOCO_TEST_KUBECONFIG is not reachable"
  else
    apiserver_ready 2>/dev/null || die "the stack's API server is not running (tests/minikube/stack up)"
  fi
  local t0=$SECONDS root; root=$(cd "$HERE/../.." && pwd)
  LOCO_API_BIN=$(build_loco_api)
  bed_database
  local kc; kc=$(bed_installer_kubeconfig)
  [ -s "$kc" ] || die "the installer kubeconfig $kc is missing (tests/minikube/stack up makes it)"
  if ! bed_loco clusters-list clusters list --output json | jq -e --arg n "$BED_CLUSTER" 'any(.[]; .name == $n)' >/dev/null; then
    # The installer identity serves as the cluster's deploy credential too: nothing deploys
    # from loco_bed; the tests register the bed in databases of their own.
    bed_loco clusters-add clusters add --region local/test-bed --name "$BED_CLUSTER" --kubeconfig "$kc" --output json >/dev/null
    say "the bed registered as cluster $BED_CLUSTER in $BED_DB"
  fi
  bed_loco installer clusters set-installer-credential --cluster "$BED_CLUSTER" --kubeconfig "$kc" >/dev/null
  local values="$STATE/platform/values.yaml"
  cat >"$values" <<VALUES
# The bed's platform values (tests/minikube/lib/platform.sh), recorded in $BED_DB.
gateway:
  controllerName: $GATEWAY_CONTROLLER
  hostname: "*.loco.test"
  # Traefik maps a listener to the entryPoint on the listener's port: the stack's loopback ports.
  httpPort: $GATEWAY_HTTP_PORT
  httpsPort: $GATEWAY_HTTPS_PORT
VALUES
  bed_loco set-values platform set-values --cluster "$BED_CLUSTER" -f "$values" --chart "$root/charts/loco" --set-by stack >/dev/null
  # GatewayClass.spec.controllerName is immutable and loco refuses a class of another
  # controller; on the bed only, one made for another controller is replaced.
  local ctl; ctl=$(kubectl get gatewayclass loco -o jsonpath='{.spec.controllerName}' 2>/dev/null || true)
  if [ -n "$ctl" ] && [ "$ctl" != "$GATEWAY_CONTROLLER" ]; then
    kubectl delete gatewayclass loco --wait=true >/dev/null || die "replacing GatewayClass loco (controller $ctl) failed"
  fi
  bed_loco apply platform apply --cluster "$BED_CLUSTER" --no-chart --chart "$root/charts/loco" --output json >"$STATE/platform/apply.json"
  if ! kubectl -n loco-system get secret loco-gateway-tls >/dev/null 2>&1; then
    local t; t=$(mktemp -d)
    openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=*.loco.test" \
      -addext "subjectAltName=DNS:*.loco.test" -keyout "$t/tls.key" -out "$t/tls.crt" 2>/dev/null
    kubectl -n loco-system create secret tls loco-gateway-tls --cert "$t/tls.crt" --key "$t/tls.key" >/dev/null \
      || { rm -rf "$t"; die "creating the Gateway's TLS Secret loco-system/loco-gateway-tls failed"; }
    rm -rf "$t"
  fi
  if [ -z "${LOCO_TEST_KUBECONFIG:-}" ]; then
    wait_for traefik "$LOGS/traefik.log" 60 gateway_programmed
  fi
  say "platform layer from $BED_DB in $((SECONDS - t0))s: Gateway API $(jq -r .report.gateway_api_version "$STATE/platform/apply.json") CRDs, GatewayClass loco, Gateway loco-system/loco (loco-api platform apply --no-chart; report $STATE/platform/apply.json)"
}
