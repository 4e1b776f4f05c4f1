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
