# Builds the test bed's Go binaries from the Go module proxy, once per version.
# Sourced by ./stack; every function is idempotent: a binary that exists is not rebuilt.
# Output: $LOCO_CACHE/bin/<component>-<version>/<binary>; logs in $LOCO_CACHE/build-logs.

go_env() {
  export CGO_ENABLED=0 GOTOOLCHAIN=local GOFLAGS=-mod=mod
  export GOMODCACHE="${GOMODCACHE:-$HOME/go/pkg/mod}" GOCACHE="${GOCACHE:-$HOME/.cache/go-build}"
}

# build_wrapped NAME DIR "go.mod body" "packages..." : builds in a throwaway wrapper module.
build_wrapped() {
  local name=$1 out=$2 gomod=$3 pkgs=$4 ldflags=${5:-} tags=${6:-}
  local w="$LOCO_CACHE/src/$name" log="$LOCO_CACHE/build-logs/$name.log"
  mkdir -p "$w" "$out" "$LOCO_CACHE/build-logs"
  printf '%s\n' "$gomod" >"$w/go.mod"
  printf 'package tools\n' >"$w/tools.go"
  say "building $name (log: $log)"
  (
    cd "$w" && go_env && go mod tidy -e >/dev/null 2>&1
    # tidy drops requires of packages the wrapper does not import; pin them again.
    printf '%s\n' "$gomod" >go.mod
    # shellcheck disable=SC2086
    go build -trimpath ${tags:+-tags "$tags"} -ldflags "$ldflags" -o "$out/" $pkgs
  ) >"$log" 2>&1 || die "building $name failed; see $log"
}

build_kubernetes() {
  local v=$KUBERNETES_VERSION out="$LOCO_CACHE/bin/kubernetes-$KUBERNETES_VERSION"
  local b missing=0
  for b in kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy; do
    [ -x "$out/$b" ] || missing=1
  done
  [ $missing = 0 ] && return 0
  go_env
  local modfile
  modfile=$(go mod download -json "k8s.io/kubernetes@$v" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [ -f "$modfile" ] || die "could not download k8s.io/kubernetes@$v from the Go module proxy"
  local minor=${v#v1.}; minor=${minor%%.*}; local patch=${v##*.}
  local staging="v0.$minor.$patch"
  # k8s.io/kubernetes replaces its staging modules with ./staging/...: pin each to its
  # published v0.x.y instead, derived from that go.mod so the list follows the release.
  local replaces
  replaces=$(sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging"'#p' "$modfile")
  local gomod
  gomod="module loco.local/k8sbuild

$(grep -E '^(go|godebug) ' "$modfile")

require k8s.io/kubernetes $v

$replaces"
  local major=1 vpkg ld=""
  for vpkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ld="$ld -X $vpkg.gitVersion=$v -X $vpkg.gitMajor=$major -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean"
  done
  build_wrapped "kubernetes-$v" "$out" "$gomod" \
    "k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubectl k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy" \
    "-s -w $ld" "selinux,notest"
}

build_etcd() {
  local out="$LOCO_CACHE/bin/etcd-$ETCD_VERSION"
  [ -x "$out/server" ] && return 0
  go_env
  local modfile; modfile=$(go mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  local gomod="module loco.local/etcdbuild

$(grep -E '^(go|godebug) ' "$modfile")

require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
  build_wrapped "etcd-$ETCD_VERSION" "$out" "$gomod" "go.etcd.io/etcd/server/v3" "-s -w"
}

# go_install NAME VERSION MODULE/CMD : modules without replace directives.
go_install() {
  local name=$1 v=$2 pkg=$3 out="$LOCO_CACHE/bin/$1-$2" log="$LOCO_CACHE/build-logs/$1-$2.log"
  [ -x "$out/$(basename "$pkg")" ] && return 0
  mkdir -p "$out" "$LOCO_CACHE/build-logs"
  say "building $name $v (log: $log)"
  ( go_env; GOBIN="$out" go install -trimpath -ldflags "-s -w" "$pkg@$v" ) >"$log" 2>&1 \
    || die "building $name $v failed; see $log"
}

# module_dir MODULE@VERSION : the extracted module source (for kwok stages, Gateway API CRDs).
module_dir() {
  go_env; go mod download -json "$1" | sed -n 's/.*"Dir": "\(.*\)",/\1/p'
}

# Traefik v3 (the Gateway API data plane). Its go.mod replaces modules with Containous
# forks: the wrapper repeats every versioned replace and exclude line of that go.mod.
# v3.7.x also replaces github.com/traefik/traefik/dynamic/ext with a nested module that
# neither the module zip nor the proxy carries; in the open-source build it is empty
# extension structs, so the wrapper then carries an equivalent stub in ./ext. (v3.7.13
# itself cannot be built from here: 15 of its pinned modules, mostly lego DNS providers
# and the go-http-auth fork, are not served by the proxy; see versions.env.)
build_traefik() {
  local v=$TRAEFIK_VERSION out="$LOCO_CACHE/bin/traefik-$TRAEFIK_VERSION"
  [ -x "$out/traefik" ] && return 0
  go_env
  local modfile; modfile=$(go mod download -json "github.com/traefik/traefik/v3@$v" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
  [ -f "$modfile" ] || die "could not download github.com/traefik/traefik/v3@$v from the Go module proxy"
  local w="$LOCO_CACHE/src/traefik-$v" ext=""
  mkdir -p "$w"
  if grep -q '^replace github.com/traefik/traefik/dynamic/ext => ' "$modfile"; then
    local used; used=$(grep -rhoE '\bext\.[A-Z][A-Za-z]*' "$(module_dir "github.com/traefik/traefik/v3@$v")/pkg" --include='*.go' | sort -u | tr '\n' ' ')
    [ "$used" = "ext.HTTP ext.Router " ] || die "traefik $v uses dynamic/ext symbols '$used'; extend the stub in lib/build.sh (build_traefik)"
    mkdir -p "$w/ext"
    printf 'module github.com/traefik/traefik/dynamic/ext\n\ngo 1.24.0\n' >"$w/ext/go.mod"
    printf 'package ext\n\n// HTTP extends dynamic.HTTP (empty in the open-source build).\ntype HTTP struct{}\n\n// Router extends dynamic.Router (empty in the open-source build).\ntype Router struct{}\n' >"$w/ext/ext.go"
    ext="require github.com/traefik/traefik/dynamic/ext v0.0.0-00010101000000-000000000000
replace github.com/traefik/traefik/dynamic/ext => ./ext"
  fi
  local forks
  forks=$(sed -n 's#^\s*\(replace \)\{0,1\}\([A-Za-z0-9./-]*\) => \([A-Za-z0-9./-]*\) \(v[^ ]*\)$#replace \2 => \3 \4#p' "$modfile")
  local gomod="module loco.local/traefikbuild

$(grep -E '^(go|godebug) ' "$modfile")

require github.com/traefik/traefik/v3 $v
$ext
$forks
$(grep -E '^exclude ' "$modfile")"
  build_wrapped "traefik-$v" "$out" "$gomod" "github.com/traefik/traefik/v3/cmd/traefik" \
    "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$v"
}

build_crane() { go_install crane "$CRANE_VERSION" github.com/google/go-containerregistry/cmd/crane; }

# Helm 3 (the chart's lint, template and install). `helm version` needs the version in its
# ldflags; without it it says v3.x-dev, which would hide a wrong build.
build_helm() {
  local out="$LOCO_CACHE/bin/helm-$HELM_VERSION" log="$LOCO_CACHE/build-logs/helm-$HELM_VERSION.log"
  [ -x "$out/helm" ] && return 0
  mkdir -p "$out" "$LOCO_CACHE/build-logs"
  say "building helm $HELM_VERSION (log: $log)"
  ( go_env; GOBIN="$out" go install -trimpath \
      -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
      "helm.sh/helm/v3/cmd/helm@$HELM_VERSION" ) >"$log" 2>&1 \
    || die "building helm $HELM_VERSION failed; see $log"
}
