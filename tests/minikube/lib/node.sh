# The real node: containerd + runc + CNI bridge + kubelet + kube-proxy, beside the kwok
# nodes. Sourced by ./stack; relies on say/die (./stack), start/stop (proc.sh), kubectl
# and the certificates (kube.sh).
#
# Network: everything of the node runs in its own network namespace $NETNS, so two stacks
# on one machine never share iptables rules (kube-proxy rewrites its KUBE-* chains as a
# whole), ports or a bridge. Inside $NETNS: the pods' bridge $BRIDGE ($POD_CIDR) and the
# end "uplink" of a veth pair whose host end is $HOST_VETH ($NODE_LINK_CIDR: host .1,
# node .2). The host routes $POD_CIDR and $SERVICE_CIDR to the node over that link, so
# Traefik, tests and kubectl on the host reach pod IPs and ClusterIPs. Nothing has a
# default route, nothing is NATed towards the outside, the host's own iptables and
# sysctls are untouched (forwarding is switched on inside $NETNS only).
#
# The node's processes reach the host's API server and registries at the same
# 127.0.0.1:PORT addresses as on the host through socat pairs (TCP in $NETNS -> unix socket
# in $RUN -> TCP 127.0.0.1 on the host): no host service listens on anything but loopback.
#
# Container runtime: Debian's containerd 1.6. kubelet 1.36 still accepts it: 1.6 lacks
# the RuntimeConfig CRI call, kubelet falls back to its own cgroupDriver and records
# kubelet_cri_losing_support{version="1.37.0"} (cmd/kubelet/app/server.go,
# getCgroupDriverFromCRI). Kubernetes 1.37 will need containerd 2.x: build it from the Go
# module proxy then.

NODE_DIR="$STATE/node"
NODE_SOCK="$NODE_DIR/containerd/containerd.sock"
CNI_BIN=${LOCO_STACK_CNI_BIN:-/usr/lib/cni}

# ip_of CIDR N : the network address of CIDR plus N.
ip_of() {
  local a b c d n; IFS=. read -r a b c d <<<"${1%/*}"
  n=$(((a << 24 | b << 16 | c << 8 | d) + $2))
  echo "$((n >> 24 & 255)).$((n >> 16 & 255)).$((n >> 8 & 255)).$((n & 255))"
}
HOST_LINK_IP=$(ip_of "$NODE_LINK_CIDR" 1)
NODE_IP=$(ip_of "$NODE_LINK_CIDR" 2)
POD_GW=$(ip_of "$POD_CIDR" 1)
CGROUP_NAME="loco-$NETNS"

in_node() { nsenter --net="/run/netns/$NETNS" -- "$@"; }
ctr_node() { ctr --address "$NODE_SOCK" -n k8s.io "$@"; }

# start_ns NAME LOG CMD... : start (proc.sh) inside the node's network namespace.
start_ns() {
  local name=$1 log=$2; shift 2
  mkdir -p "$(dirname "$log")" "$RUN"
  : >"$log"
  local exe; exe=$(readlink -f "$(command -v "$1")") || die "$1 not found (for $name)"
  setsid nsenter --net="/run/netns/$NETNS" -- "$@" >>"$log" 2>&1 </dev/null &
  local pid=$! i
  echo "$pid $exe" >"$(pidfile "$name")"
  # nsenter execs CMD in place: wait until the pid is CMD, so `running` does not misread it.
  for i in $(seq 1 50); do
    [ "$(readlink -f "/proc/$pid/exe" 2>/dev/null)" = "$exe" ] && return 0
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
}

node_packages() { # prints the Debian packages the real node needs and lacks
  command -v containerd >/dev/null || echo containerd
  command -v runc >/dev/null || echo runc
  [ -x "$CNI_BIN/bridge" ] && [ -x "$CNI_BIN/host-local" ] && [ -x "$CNI_BIN/loopback" ] && [ -x "$CNI_BIN/portmap" ] \
    || echo containernetworking-plugins
  command -v iptables >/dev/null || echo iptables
  command -v conntrack >/dev/null || echo conntrack
  command -v socat >/dev/null || echo socat
  command -v nsenter >/dev/null || echo util-linux
  dpkg -s busybox-static >/dev/null 2>&1 || echo busybox-static
  command -v htpasswd >/dev/null || echo apache2-utils
}

up_node_net() {
  local made="$RUN/node-net.made" ours=""
  [ -f "$made" ] && read -r ours _ <"$made"
  if [ -n "$ours" ] && [ "$ours" != "$NETNS" ]; then
    die "this stack's real node runs in network namespace $ours, not LOCO_STACK_NETNS=$NETNS: run \`stack down\` with the old settings first"
  fi
  if [ -e "/run/netns/$NETNS" ] && [ "$ours" != "$NETNS" ]; then
    die "network namespace $NETNS exists but this stack did not make it (another stack?). Choose another: export LOCO_STACK_NETNS=<name> (and LOCO_STACK_HOST_VETH, LOCO_STACK_POD_CIDR, LOCO_STACK_SERVICE_CIDR, LOCO_STACK_NODE_LINK_CIDR)"
  fi
  if [ ! -e "/run/netns/$NETNS" ]; then
    ip link show "$HOST_VETH" >/dev/null 2>&1 && die "interface $HOST_VETH already exists; choose another: export LOCO_STACK_HOST_VETH=<name>"
    local cidr dev
    for cidr in "$POD_CIDR" "$SERVICE_CIDR" "$NODE_LINK_CIDR"; do
      dev=$(ip -4 route show "$cidr" 2>/dev/null | head -n1)
      [ -z "$dev" ] || die "the host already routes $cidr ($dev); choose other ranges: LOCO_STACK_POD_CIDR, LOCO_STACK_SERVICE_CIDR, LOCO_STACK_NODE_LINK_CIDR"
    done
    ip netns add "$NETNS" || die "ip netns add $NETNS failed (the real node needs root)"
    echo "$NETNS $HOST_VETH" >"$made"
    ip link add "$HOST_VETH" type veth peer name uplink netns "$NETNS" || die "creating the veth pair $HOST_VETH failed"
  fi
  ip addr replace "$HOST_LINK_IP/${NODE_LINK_CIDR#*/}" dev "$HOST_VETH"
  ip link set "$HOST_VETH" up
  in_node ip link set lo up
  in_node ip addr replace "$NODE_IP/${NODE_LINK_CIDR#*/}" dev uplink
  in_node ip link set uplink up
  in_node ip link show "$BRIDGE" >/dev/null 2>&1 || in_node ip link add "$BRIDGE" type bridge
  in_node ip addr replace "$POD_GW/${POD_CIDR#*/}" dev "$BRIDGE"
  in_node ip link set "$BRIDGE" up
  # Inside the namespace only: route between uplink and bridge; bridged pod-to-pod traffic
  # goes through iptables so kube-proxy's DNAT is undone on the way back.
  in_node sysctl -qw net.ipv4.ip_forward=1
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && in_node sysctl -qw net.bridge.bridge-nf-call-iptables=1
  ip route replace "$POD_CIDR" via "$NODE_IP" dev "$HOST_VETH"
  ip route replace "$SERVICE_CIDR" via "$NODE_IP" dev "$HOST_VETH"
}

down_node_net() {
  [ -f "$RUN/node-net.made" ] || return 0
  [ -e "/run/netns/$NETNS" ] && ip netns del "$NETNS" # takes the bridge, veths and its iptables along
  ip link del "$HOST_VETH" 2>/dev/null || true
  rm -f "$RUN/node-net.made"
  say "removed network namespace $NETNS and its link $HOST_VETH (routes to $POD_CIDR, $SERVICE_CIDR)"
}

# fwd NAME PORT [BIND SIDE] : BIND:PORT inside the node's namespace (127.0.0.1 by default,
# for the node's own processes) reaches 127.0.0.1:PORT on the host. With BIND $NODE_IP
# (the node's end of the link, SIDE "pods") pods on the real node reach it too, and
# nothing else does: for Postgres, loco-api's pod of tests/chart-install.
up_fwd() {
  local name=$1 port=$2 bind=${3:-127.0.0.1} side=${4:-node} sock="$RUN/fwd-$1.sock"
  running "fwd-$name-host" || start "fwd-$name-host" "$LOGS/fwd-$name.log" \
    socat "UNIX-LISTEN:$sock,fork,unlink-early,mode=600" "TCP:127.0.0.1:$port"
  running "fwd-$name-$side" || start_ns "fwd-$name-$side" "$LOGS/fwd-$name-$side.log" \
    socat "TCP-LISTEN:$port,bind=$bind,fork,reuseaddr" "UNIX-CONNECT:$sock"
}

up_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/; do
    [ -f "$h/cgroup.procs" ] || continue
    mkdir -p "$h$CGROUP_NAME"
    case $h in
      */cpuset/) # a new cpuset is empty: give it the root's CPUs and memory nodes
        [ -s "$h$CGROUP_NAME/cpuset.cpus" ] && [ -n "$(cat "$h$CGROUP_NAME/cpuset.cpus")" ] || cat "${h}cpuset.cpus" >"$h$CGROUP_NAME/cpuset.cpus"
        [ -n "$(cat "$h$CGROUP_NAME/cpuset.mems")" ] || cat "${h}cpuset.mems" >"$h$CGROUP_NAME/cpuset.mems" ;;
    esac
  done
  [ -f /sys/fs/cgroup/cgroup.controllers ] && mkdir -p "/sys/fs/cgroup/$CGROUP_NAME"
  return 0
}

# Kills what is left in the node's cgroups (by pid, read from its own cgroup.procs), then
# removes them, deepest first.
down_cgroups() {
  local h d pid
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -d "$h$CGROUP_NAME" ] || continue
    while read -r d; do
      while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done <"$d/cgroup.procs"
    done < <(find "$h$CGROUP_NAME" -type d)
  done
  # A cgroup can be removed only once its last process is gone: retry for a few seconds.
  local i left
  for i in $(seq 1 25); do
    left=0
    for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
      [ -d "$h$CGROUP_NAME" ] || continue
      find "$h$CGROUP_NAME" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [ -d "$h$CGROUP_NAME" ] && left=1
    done
    [ $left = 0 ] && return 0
    sleep 0.2
  done
  say "warning: cgroups /sys/fs/cgroup/*/$CGROUP_NAME could not all be removed"
  return 0
}

registry_hosts() { # dir host:port
  mkdir -p "$1/$2"
  cat >"$1/$2/hosts.toml" <<TOML
server = "http://$2"
[host."http://$2"]
  capabilities = ["pull", "resolve"]
TOML
}

up_containerd() {
  running containerd && return 0
  local d="$NODE_DIR/containerd"
  mkdir -p "$d/root" "$d/state" "$d/certs.d" "$d/opt" "$NODE_DIR/cni/net.d" "$NODE_DIR/cni/ipam"
  registry_hosts "$d/certs.d" "127.0.0.1:$REGISTRY_PORT"
  registry_hosts "$d/certs.d" "127.0.0.1:$REGISTRY_AUTH_PORT"
  local pause; pause=$(image_ref pause) || die "the pause image was not pushed (see $LOGS/images.log)"
  cat >"$d/config.toml" <<TOML
version = 2
root = "$d/root"
state = "$d/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]
[grpc]
  address = "$NODE_SOCK"
[ttrpc]
  address = "$NODE_SOCK.ttrpc"
[plugins."io.containerd.internal.v1.opt"]
  path = "$d/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$pause"
  stream_server_address = "127.0.0.1"
  enable_selinux = false
  # Sandboxes like this one lack CAP_SYS_RESOURCE: a negative oom_score_adj (kubelet
  # gives pause -998) fails runc ("failed to update /proc/self/oom_score_adj"). Clamp
  # containers' scores to containerd's own, as rootless setups do.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$NODE_DIR/cni/net.d"
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "$d/certs.d"
TOML
  # Routes in pods: the bridge's subnet, the Service range and the host link, nothing else.
  cat >"$NODE_DIR/cni/net.d/10-loco.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "loco-$NETNS",
  "plugins": [
    {"type": "bridge", "bridge": "$BRIDGE", "isGateway": true, "ipMasq": false, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$NODE_DIR/cni/ipam",
              "ranges": [[{"subnet": "$POD_CIDR", "gateway": "$POD_GW"}]],
              "routes": [{"dst": "$SERVICE_CIDR"}, {"dst": "$NODE_LINK_CIDR"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
JSON
  start_ns containerd "$LOGS/containerd.log" containerd --config "$d/config.toml"
  wait_for containerd "$LOGS/containerd.log" 30 ctr --address "$NODE_SOCK" version
}

up_kubelet() {
  running kubelet && return 0
  local d="$KDIR/pki" k="$NODE_DIR/kubelet"
  mkdir -p "$k" "$NODE_DIR/pod-logs"
  write_kubeconfig "$KDIR/node.kubeconfig" "node-$NODE_NAME"
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This host mounts cgroup v1 only: kubelet 1.35+ refuses that unless told otherwise.
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: /$CGROUP_NAME
cgroupsPerQOS: true
failSwapOn: false
address: $NODE_IP
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $d/ca.crt}
authorization: {mode: Webhook}
containerRuntimeEndpoint: unix://$NODE_SOCK
podLogsDir: $NODE_DIR/pod-logs
registerWithTaints:
- {key: loco.deploy-app.com/real-node, value: "true", effect: NoSchedule}
# A shared test machine: never evict or garbage-collect images because its disk is busy.
evictionHard: {memory.available: 100Mi, nodefs.available: 1%, nodefs.inodesFree: 1%, imagefs.available: 1%}
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
serializeImagePulls: false
maxPods: 50
resolvConf: /etc/resolv.conf
rotateCertificates: false
serverTLSBootstrap: false
YAML
  up_cgroups
  start_ns kubelet "$LOGS/kubelet.log" "$(kbin kubelet)" \
    --config "$NODE_DIR/kubelet.yaml" --kubeconfig "$KDIR/node.kubeconfig" \
    --root-dir "$k" --cert-dir "$k/pki" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" \
    --node-labels "loco.deploy-app.com/node=real" --v=1
  wait_for kubelet "$LOGS/kubelet.log" 60 in_node curl -fsS http://127.0.0.1:10248/healthz
}

up_kube_proxy() {
  running kube-proxy && return 0
  write_kubeconfig "$KDIR/kube-proxy.kubeconfig" kube-proxy
  # conntrack limits are global sysctls: 0 leaves them as the host has them.
  start_ns kube-proxy "$LOGS/kube-proxy.log" "$(kbin kube-proxy)" \
    --kubeconfig "$KDIR/kube-proxy.kubeconfig" --hostname-override "$NODE_NAME" \
    --proxy-mode iptables --cluster-cidr "$POD_CIDR" \
    --conntrack-max-per-core 0 --conntrack-tcp-timeout-established 0 --conntrack-tcp-timeout-close-wait 0 \
    --metrics-bind-address 127.0.0.1:10249 --healthz-bind-address 127.0.0.1:10256 --v=1
  wait_for kube-proxy "$LOGS/kube-proxy.log" 60 in_node curl -fsS http://127.0.0.1:10256/healthz
}

node_ready() {
  [ "$(kubectl get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]
}

up_real_node() {
  [ "$(id -u)" = 0 ] || die "the real node needs root (network namespace, cgroups, mounts); run as root or use --no-real-node"
  [ -d /sys/fs/cgroup/cpu ] || [ -f /sys/fs/cgroup/cgroup.controllers ] || die "no cgroup hierarchy under /sys/fs/cgroup"
  up_node_net
  up_fwd apiserver "$APISERVER_PORT"
  up_fwd registry "$REGISTRY_PORT"
  up_fwd registry-auth "$REGISTRY_AUTH_PORT"
  up_fwd postgres "$POSTGRES_PORT" "$NODE_IP" pods
  up_containerd
  up_kubelet
  up_kube_proxy
  kubectl apply --server-side --force-conflicts --field-manager loco-stack -f "$HERE/manifests/kubelet-api-rbac.yaml" >/dev/null \
    || die "applying manifests/kubelet-api-rbac.yaml failed"
  wait_for kubelet "$LOGS/kubelet.log" 90 node_ready
  say "real node $NODE_NAME Ready (containerd $(containerd --version | awk '{print $3}'), runc, CNI bridge $BRIDGE $POD_CIDR in netns $NETNS; label loco.deploy-app.com/node=real, taint loco.deploy-app.com/real-node=true:NoSchedule)"
}

down_real_node() {
  stop kubelet; stop kube-proxy
  if running containerd; then
    # Pods' network namespaces are bind mounts under /var/run/netns: note ours before
    # their sandboxes go.
    local id netns=()
    while read -r id; do
      [ -n "$id" ] || continue
      netns+=($(ctr_node containers info "$id" 2>/dev/null | sed -n 's#.*"path": "\(/var/run/netns/cni-[^"]*\)".*#\1#p'))
    done < <(ctr_node containers list -q 2>/dev/null)
    while read -r id; do
      [ -n "$id" ] && { ctr_node tasks delete --force "$id" >/dev/null 2>&1 || true; }
    done < <(ctr_node tasks list -q 2>/dev/null)
    while read -r id; do
      [ -n "$id" ] && { ctr_node containers delete "$id" >/dev/null 2>&1 || true; }
    done < <(ctr_node containers list -q 2>/dev/null)
    stop containerd
    local n
    for n in "${netns[@]}"; do umount "$n" 2>/dev/null || true; rm -f "$n"; done
  else
    stop containerd
  fi
  down_cgroups
  # Whatever kubelet and containerd left mounted under the node's directory (volumes,
  # rootfs), deepest first.
  local m
  # (kubelet bind-mounts its root directory onto itself.)
  while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(findmnt -rn -o TARGET | grep "^$NODE_DIR/" | sort -r || true)
  local f
  for f in apiserver registry registry-auth; do stop "fwd-$f-node"; stop "fwd-$f-host"; rm -f "$RUN/fwd-$f.sock"; done
  stop fwd-postgres-pods; stop fwd-postgres-host; rm -f "$RUN/fwd-postgres.sock"
  down_node_net
}
