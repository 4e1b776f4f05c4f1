# The local Kubernetes control plane: etcd, kube-apiserver, kube-controller-manager,
# kube-scheduler and kwok (fake Ready nodes and pods). Sourced by ./stack.

KDIR="$STATE/kube"
KUBECONFIG_ADMIN="$KDIR/admin.kubeconfig"

kbin() { echo "$LOCO_CACHE/bin/kubernetes-$KUBERNETES_VERSION/$1"; }
kubectl() { "$(kbin kubectl)" --kubeconfig "${KUBECONFIG_USE:-$KUBECONFIG_ADMIN}" "$@"; }

# A CA kept apart from the serving certificate: rustls (kube-rs) rejects a leaf used as its own CA.
make_certs() {
  local d="$KDIR/pki"
  [ -f "$d/ready" ] && return 0
  mkdir -p "$d"
  say "creating certificates and service-account keys in $d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=loco-test-ca" \
      -keyout ca.key -out ca.crt 2>/dev/null
    cat >server.ext <<EXT
basicConstraints=CA:FALSE
keyUsage=digitalSignature,keyEncipherment
extendedKeyUsage=serverAuth
subjectAltName=DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,IP:127.0.0.1,IP:$(ip_of "$SERVICE_CIDR" 1)
EXT
    openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" -keyout server.key -out server.csr 2>/dev/null
    openssl x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
      -extfile server.ext -out server.crt 2>/dev/null
    printf 'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >client.ext
    local who file cn org
    for who in "admin|kubernetes-admin|system:masters" "controller-manager|system:kube-controller-manager|" \
               "scheduler|system:kube-scheduler|" "kwok|kwok-controller|system:masters"; do
      IFS='|' read -r file cn org <<<"$who"
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn${org:+/O=$org}" -keyout "$file.key" -out "$file.csr" 2>/dev/null
      openssl x509 -req -in "$file.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile client.ext -out "$file.crt" 2>/dev/null
    done
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    # Secrets are encrypted at rest in etcd, as the chart docs recommend for real clusters.
    cat >encryption.yaml <<ENC
apiVersion: apiserver.config.k8s.io/v1
kind: EncryptionConfiguration
resources:
  - resources: [secrets]
    providers:
      - secretbox:
          keys:
            - name: key1
              secret: $(head -c 32 /dev/urandom | base64)
      - identity: {}
ENC
    touch ready
  ) || die "creating certificates with openssl failed in $d"
}

# client_cert FILE CN [ORG] : one more client certificate from the stack's CA (idempotent,
# so state directories made before it existed get it too).
client_cert() {
  local d="$KDIR/pki" f=$1 cn=$2 org=${3:-}
  [ -f "$d/$f.crt" ] && return 0
  (
    cd "$d" &&
      openssl req -newkey rsa:2048 -nodes -subj "/CN=$cn${org:+/O=$org}" -keyout "$f.key" -out "$f.csr" 2>/dev/null &&
      openssl x509 -req -in "$f.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 3650 \
        -extfile client.ext -out "$f.crt" 2>/dev/null
  ) || die "creating the client certificate $f ($cn) failed in $d"
}

# The real node's kubelet (Node authorizer: CN system:node:<name>, O system:nodes),
# kube-proxy (bound by default to system:node-proxier), Traefik (ClusterRole in
# manifests/traefik-rbac.yaml) and the API server's client certificate towards kubelets.
more_certs() {
  client_cert "node-$NODE_NAME" "system:node:$NODE_NAME" system:nodes
  client_cert kube-proxy system:kube-proxy
  client_cert traefik loco-traefik
  client_cert apiserver-kubelet-client kube-apiserver-kubelet-client
  # loco's installer identity (loco-api clusters set-installer-credential): a client
  # certificate, so it outlives an emptied etcd, as a cloud's cluster-admin identity does.
  client_cert loco-installer loco-installer system:masters
  write_kubeconfig "$KDIR/loco-installer.kubeconfig" loco-installer
}

write_kubeconfig() { # file user
  local file=$1 user=$2 d="$KDIR/pki"
  cat >"$file" <<EOF2
apiVersion: v1
kind: Config
clusters:
- name: loco-test
  cluster:
    server: https://127.0.0.1:$APISERVER_PORT
    certificate-authority-data: $(base64 -w0 <"$d/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $(base64 -w0 <"$d/$user.crt")
    client-key-data: $(base64 -w0 <"$d/$user.key")
contexts:
- name: loco-test
  context: {cluster: loco-test, user: $user}
current-context: loco-test
EOF2
  chmod 600 "$file"
}

etcd_healthy() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health" | grep -q '"health":"true"'; }
apiserver_ready() { curl -fsS --cacert "$KDIR/pki/ca.crt" "https://127.0.0.1:$APISERVER_PORT/readyz" | grep -q ok; }

up_etcd() {
  running etcd && return 0
  require_free_port etcd "$ETCD_PORT" LOCO_STACK_ETCD_PORT
  require_free_port "etcd (peer)" "$ETCD_PEER_PORT" LOCO_STACK_ETCD_PEER_PORT
  mkdir -p "$STATE/etcd"
  start etcd "$LOGS/etcd.log" "$LOCO_CACHE/bin/etcd-$ETCD_VERSION/server" \
    --name loco --data-dir "$STATE/etcd" --unsafe-no-fsync \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "loco=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
  wait_for etcd "$LOGS/etcd.log" 30 etcd_healthy
  say "etcd ready on 127.0.0.1:$ETCD_PORT"
}

up_apiserver() {
  running kube-apiserver && return 0
  require_free_port kube-apiserver "$APISERVER_PORT" LOCO_STACK_APISERVER_PORT
  local d="$KDIR/pki"
  start kube-apiserver "$LOGS/kube-apiserver.log" "$(kbin kube-apiserver)" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$APISERVER_PORT" \
    --tls-cert-file "$d/server.crt" --tls-private-key-file "$d/server.key" --client-ca-file "$d/ca.crt" \
    --authorization-mode Node,RBAC \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --kubelet-client-certificate "$d/apiserver-kubelet-client.crt" --kubelet-client-key "$d/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP \
    --encryption-provider-config "$d/encryption.yaml" \
    --allow-privileged=false --profiling=false --v=1
  wait_for kube-apiserver "$LOGS/kube-apiserver.log" 90 apiserver_ready
  say "kube-apiserver $KUBERNETES_VERSION ready on https://127.0.0.1:$APISERVER_PORT"
}

# The controllers' client rate (--kube-api-qps, burst twice that). Upstream's default of
# 20 (scheduler 50) makes the controllers, not the API server, the bound of every bulk
# test: 1,000 Deployments need ~6 controller writes each before their pods are Ready.
# Clusters with many apps raise it the same way (LOCO_STACK_CONTROLLER_QPS).
CONTROLLER_QPS=${LOCO_STACK_CONTROLLER_QPS:-200}

up_controllers() {
  local d="$KDIR/pki"
  write_kubeconfig "$KDIR/controller-manager.kubeconfig" controller-manager
  write_kubeconfig "$KDIR/scheduler.kubeconfig" scheduler
  if ! running kube-controller-manager; then
    require_free_port kube-controller-manager "$KCM_PORT" LOCO_STACK_KCM_PORT
    start kube-controller-manager "$LOGS/kube-controller-manager.log" "$(kbin kube-controller-manager)" \
      --kubeconfig "$KDIR/controller-manager.kubeconfig" \
      --authentication-kubeconfig "$KDIR/controller-manager.kubeconfig" \
      --authorization-kubeconfig "$KDIR/controller-manager.kubeconfig" \
      --leader-elect=false --controllers '*' --use-service-account-credentials \
      --service-account-private-key-file "$d/sa.key" --root-ca-file "$d/ca.crt" \
      --service-cluster-ip-range "$SERVICE_CIDR" \
      --kube-api-qps "$CONTROLLER_QPS" --kube-api-burst "$((CONTROLLER_QPS * 2))" \
      --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --v=1
  fi
  if ! running kube-scheduler; then
    require_free_port kube-scheduler "$SCHEDULER_PORT" LOCO_STACK_SCHEDULER_PORT
    start kube-scheduler "$LOGS/kube-scheduler.log" "$(kbin kube-scheduler)" \
      --kubeconfig "$KDIR/scheduler.kubeconfig" \
      --authentication-kubeconfig "$KDIR/scheduler.kubeconfig" \
      --authorization-kubeconfig "$KDIR/scheduler.kubeconfig" \
      --kube-api-qps "$CONTROLLER_QPS" --kube-api-burst "$((CONTROLLER_QPS * 2))" \
      --leader-elect=false --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --v=1
  fi
  wait_for kube-controller-manager "$LOGS/kube-controller-manager.log" 60 \
    curl -fsSk "https://127.0.0.1:$KCM_PORT/healthz"
  wait_for kube-scheduler "$LOGS/kube-scheduler.log" 60 curl -fsSk "https://127.0.0.1:$SCHEDULER_PORT/healthz"
  say "kube-controller-manager and kube-scheduler running"
}

# kwok's stages: upstream's node and pod stages from the kwok module, with pod-ready
# changed so that a pod whose container image name contains "never-ready" is Running
# but never Ready (tests use it to produce a failed rollout).
kwok_stages() {
  local src; src=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")/kustomize/stage
  local dst="$STATE/kwok/stages"
  mkdir -p "$dst"
  cp "$src/node/fast/node-initialize.yaml" "$src/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" "$dst/"
  local f
  for f in pod-create pod-init-container-running pod-init-container-completed pod-complete pod-delete; do
    cp "$src/pod/general/$f.yaml" "$dst/"
  done
  local marker='    - key: '"'"'.spec.containers.[] | select(.image | contains("never-ready")) | .name'"'"''
  # pod-ready: add "no never-ready container" to its selector.
  awk -v m="$marker" '{print} /^    matchExpressions:$/ && !done {print m; print "      operator: '"'"'DoesNotExist'"'"'"; done=1}' \
    "$src/pod/general/pod-ready.yaml" >"$dst/pod-ready.yaml"
  cp "$HERE/kwok/pod-never-ready.yaml" "$dst/"
  chmod 644 "$dst"/*.yaml
}

up_kwok() {
  running kwok && return 0
  kwok_stages
  write_kubeconfig "$KDIR/kwok.kubeconfig" kwok
  local args=() f
  for f in "$STATE"/kwok/stages/*.yaml; do args+=(-c "$f"); done
  start kwok "$LOGS/kwok.log" "$LOCO_CACHE/bin/kwok-$KWOK_VERSION/kwok" \
    --kubeconfig "$KDIR/kwok.kubeconfig" \
    --manage-all-nodes=false --manage-nodes-with-label-selector=type=kwok \
    --node-lease-duration-seconds=40 --cidr=10.244.0.1/16 --node-ip=10.245.0.1 \
    --server-address "127.0.0.1:$KWOK_PORT" "${args[@]}"
  wait_for kwok "$LOGS/kwok.log" 30 curl -fsS "http://127.0.0.1:$KWOK_PORT/healthz"
  say "kwok running (manages nodes labelled type=kwok)"
}

# Fake nodes: a plain create (not server-side apply) keeps status.capacity/allocatable.
up_nodes() {
  local i name
  for i in $(seq 0 $((NODES - 1))); do
    name="kwok-node-$i"
    kubectl get node "$name" >/dev/null 2>&1 && continue
    kubectl create -f - >/dev/null <<EOF2 || die "creating node $name failed; see $LOGS/kube-apiserver.log"
apiVersion: v1
kind: Node
metadata:
  name: $name
  labels: {type: kwok, kubernetes.io/hostname: $name, kubernetes.io/os: linux, kubernetes.io/arch: amd64}
  annotations: {kwok.x-k8s.io/node: fake, node.alpha.kubernetes.io/ttl: "0"}
status:
  allocatable: {cpu: "$NODE_CPU", memory: $NODE_MEMORY, pods: "110"}
  capacity: {cpu: "$NODE_CPU", memory: $NODE_MEMORY, pods: "110"}
EOF2
  done
  local deadline=$((SECONDS + 60))
  until [ "$(kubectl get nodes -l type=kwok -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}' | grep -c True)" -ge "$NODES" ]; do
    [ $SECONDS -lt $deadline ] || die "kwok nodes did not become Ready within 60s; see $LOGS/kwok.log"
    sleep 0.5
  done
  # After a restart the controller manager has tainted the nodes not-ready/unreachable;
  # it lifts that on its next sync. Wait, so tests never race the scheduler against it.
  local taints
  while taints=$(kubectl get nodes -l type=kwok -o jsonpath='{.items[*].spec.taints[*].key}') &&
    [[ $taints =~ node.kubernetes.io/(not-ready|unreachable) ]]; do
    [ $SECONDS -lt $deadline ] || die "kwok nodes kept their not-ready taints for 60s; see $LOGS/kube-controller-manager.log"
    sleep 0.5
  done
  say "$NODES kwok nodes Ready ($NODE_CPU CPU / $NODE_MEMORY each)"
}

gateway_programmed() {
  [ "$(kubectl -n loco-system get gateway loco -o jsonpath='{.status.conditions[?(@.type=="Programmed")].status}' 2>/dev/null)" = True ]
}

# Traefik, a host process serving Gateway loco-system/loco on loopback ports, with its
# own client certificate and a least-privilege ClusterRole (manifests/traefik-rbac.yaml).
# It starts serving nothing: the Gateway is the platform layer's (lib/platform.sh), and
# `stack platform` waits for Traefik to program it.
up_traefik() {
  kubectl apply --server-side --force-conflicts --field-manager loco-stack -f "$HERE/manifests/traefik-rbac.yaml" >/dev/null \
    || die "applying manifests/traefik-rbac.yaml failed"
  start_traefik
  say "Traefik $TRAEFIK_VERSION runs on http://127.0.0.1:$GATEWAY_HTTP_PORT and https://127.0.0.1:$GATEWAY_HTTPS_PORT (it serves the Gateway loco-system/loco once the platform layer is applied)"
}

start_traefik() {
  running traefik && return 0
  require_free_port "traefik (gateway http)" "$GATEWAY_HTTP_PORT" LOCO_STACK_GATEWAY_HTTP_PORT
  require_free_port "traefik (gateway https)" "$GATEWAY_HTTPS_PORT" LOCO_STACK_GATEWAY_HTTPS_PORT
  require_free_port "traefik (ping)" "$TRAEFIK_PORT" LOCO_STACK_TRAEFIK_PORT
  write_kubeconfig "$KDIR/traefik.kubeconfig" traefik
  (
    export KUBECONFIG="$KDIR/traefik.kubeconfig"
    start traefik "$LOGS/traefik.log" "$LOCO_CACHE/bin/traefik-$TRAEFIK_VERSION/traefik" \
      --global.checkNewVersion=false --global.sendAnonymousUsage=false --log.level=INFO \
      --entryPoints.web.address="127.0.0.1:$GATEWAY_HTTP_PORT" \
      --entryPoints.websecure.address="127.0.0.1:$GATEWAY_HTTPS_PORT" \
      --entryPoints.traefik.address="127.0.0.1:$TRAEFIK_PORT" \
      --ping=true --ping.entryPoint=traefik \
      --providers.kubernetesgateway=true --providers.kubernetesgateway.statusAddress.ip=127.0.0.1
  )
  wait_for traefik "$LOGS/traefik.log" 30 curl -fsS "http://127.0.0.1:$TRAEFIK_PORT/ping"
}

up_kubernetes() {
  if [ -n "${LOCO_TEST_KUBECONFIG:-}" ]; then
    [ -f "$LOCO_TEST_KUBECONFIG" ] || die "LOCO_TEST_KUBECONFIG=$LOCO_TEST_KUBECONFIG does not exist"
    KUBECONFIG_USE=$LOCO_TEST_KUBECONFIG
    kubectl version >/dev/null 2>&1 || die "the cluster of LOCO_TEST_KUBECONFIG=$LOCO_TEST_KUBECONFIG is not reachable (kubectl version failed)"
    say "using the cluster of LOCO_TEST_KUBECONFIG=$LOCO_TEST_KUBECONFIG"
    return 0
  fi
  make_certs
  more_certs
  write_kubeconfig "$KUBECONFIG_ADMIN" admin
  up_etcd
  up_apiserver
  up_controllers
  up_kwok
  up_nodes
  up_traefik
}

down_kubernetes() {
  stop traefik; stop kwok; stop kube-scheduler; stop kube-controller-manager; stop kube-apiserver; stop etcd
}
