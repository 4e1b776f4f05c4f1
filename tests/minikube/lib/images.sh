# Test images without Docker: tests/minikube/images/testapp (standard library Go, built
# statically) plus Debian's busybox-static, assembled into single-layer OCI images with
# crane and pushed to the stack's registry; references are pinned by digest. Sourced by
# ./stack.
#
#   pause      the pod sandbox image (containerd's sandbox_image): `testapp pause`
#   httpd      `testapp serve` on :8080: /healthz 200, /env-sha256/NAME, any other path
#              echoes app name/version, host, path and the NAMES of its env variables
#   unhealthy  the same with LOCO_TEST_HEALTHZ_STATUS=500: its /healthz always fails
# A reference is written to $STATE/images/NAME.ref once the registry has it.

IMAGES=(pause httpd unhealthy)

image_ref() { local f="$STATE/images/$1.ref"; [ -s "$f" ] && sed -n 2p "$f"; }

crane_bin() { echo "$LOCO_CACHE/bin/crane-$CRANE_VERSION/crane"; }

build_testapp() {
  local src="$HERE/images/testapp" sum
  sum=$(cat "$src/go.mod" "$src/main.go" | sha256sum | cut -c1-16)
  TESTAPP="$LOCO_CACHE/bin/testapp-$sum/testapp"
  [ -x "$TESTAPP" ] && return 0
  mkdir -p "$(dirname "$TESTAPP")" "$LOCO_CACHE/build-logs"
  ( cd "$src" && go_env && go build -trimpath -ldflags "-s -w" -o "$TESTAPP" . ) >"$LOCO_CACHE/build-logs/testapp.log" 2>&1 \
    || die "building tests/minikube/images/testapp failed; see $LOCO_CACHE/build-logs/testapp.log"
}

push_images() {
  build_testapp
  local crane; crane=$(crane_bin)
  local reg="127.0.0.1:$REGISTRY_PORT" log="$LOGS/images.log" work name key ref
  local busybox=/bin/busybox
  mkdir -p "$STATE/images"
  : >"$log"
  for name in "${IMAGES[@]}"; do
    key=$( { sha256sum "$TESTAPP" "$busybox" | cut -d' ' -f1; echo "$name v1 user 65534"; } | sha256sum | cut -c1-32)
    if [ "$(sed -n 1p "$STATE/images/$name.ref" 2>/dev/null)" = "$key" ] &&
      "$crane" digest --insecure "$(image_ref "$name")" >/dev/null 2>&1; then
      continue
    fi
    work=$(mktemp -d)
    mkdir -p "$work/root/bin" "$work/root/tmp" "$work/root/etc"
    cp "$TESTAPP" "$work/root/bin/testapp"
    # App images run as nobody (65534): loco renders runAsNonRoot, which kubelet checks
    # against the image's numeric user.
    local entry=(/bin/testapp serve) env=(--env "LOCO_TEST_IMAGE_NAME=$name" --env PORT=8080 --user 65534:65534)
    case $name in
      pause) entry=(/bin/testapp pause); env=() ;;
      unhealthy) env+=(--env LOCO_TEST_HEALTHZ_STATUS=500) ;;
    esac
    if [ "$name" != pause ]; then # a shell for exec in app images
      cp "$busybox" "$work/root/bin/busybox"
      ln -s busybox "$work/root/bin/sh"
      printf 'root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$work/root/etc/passwd"
    fi
    chmod 1777 "$work/root/tmp"
    tar -C "$work/root" --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -cf "$work/layer.tar" . \
      || die "packing the $name image failed"
    ref=$({ "$crane" append --insecure --oci-empty-base --new_layer "$work/layer.tar" --new_tag "$reg/loco-test/$name:v1" >/dev/null &&
      "$crane" mutate --insecure "$reg/loco-test/$name:v1" --set-platform linux/amd64 \
        --entrypoint "$(IFS=,; echo "${entry[*]}")" "${env[@]}" --tag "$reg/loco-test/$name:v1"; } 2>>"$log") \
      || die "pushing image $reg/loco-test/$name:v1 with crane failed; see $log"
    rm -rf "$work"
    [[ $ref == *@sha256:* ]] || die "crane mutate printed no digest reference for $name ('$ref'); see $log"
    printf '%s\n%s\n' "$key" "$reg/loco-test/$name@${ref##*@}" >"$STATE/images/$name.ref"
  done
  say "test images in the registry: $(for n in "${IMAGES[@]}"; do printf '%s ' "$(image_ref "$n")"; done)"
}

# loco's own images, without Docker: `stack image BIN...` packs each loco binary built
# in $CARGO_TARGET_DIR (debug unless LOCO_IMAGE_PROFILE=release) with the shared
# libraries `ldd` names, the CA bundle and a passwd naming nonroot (65532), into one
# layer; loco-resurrect's image also carries helm and charts/loco (its platform phase
# installs the chart). The reference, pinned by digest, goes to stdout and to
# $STATE/images/loco-BIN.ref. The same layout is what a release pipeline would publish.
LOCO_IMAGE_USER=65532

push_loco_image() {
  local bin=$1 crane reg="127.0.0.1:$REGISTRY_PORT" log="$LOGS/images.log"
  local target=${CARGO_TARGET_DIR:-$LOCO_CACHE/target} profile=${LOCO_IMAGE_PROFILE:-debug}
  local exe="$target/$profile/$bin"
  case $bin in loco-api | loco-resurrect | loco-sleeper | loco-snapshotter | loco-registry-janitor) ;;
    *) die "stack image: '$bin' is not a loco binary (loco-api, loco-resurrect, ...)" ;;
  esac
  [ -x "$exe" ] || die "stack image: $exe is not built; build it first: cargo build --bin $bin (CARGO_TARGET_DIR=$target)"
  crane=$(crane_bin)
  [ -x "$crane" ] || die "stack image: crane is not built yet (tests/minikube/stack build)"
  command -v strip >/dev/null || die "stack image: strip not found (apt-get install binutils)"
  mkdir -p "$STATE/images" "$LOGS"
  local work; work=$(mktemp -d)
  local root="$work/root"
  mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/tmp" "$root/home/nonroot"
  strip -o "$root/usr/local/bin/$bin" "$exe" || die "stack image: stripping $exe failed"
  # The dynamic loader and every library the binary links, at their own paths.
  local lib
  for lib in $(ldd "$exe" | grep -o '/[^ ]*' | sort -u); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:%s:%s:nonroot:/home/nonroot:/sbin/nologin\n' \
    "$LOCO_IMAGE_USER" "$LOCO_IMAGE_USER" >"$root/etc/passwd"
  printf 'root:x:0:\nnonroot:x:%s:\n' "$LOCO_IMAGE_USER" >"$root/etc/group"
  chmod 1777 "$root/tmp"
  local env=(--env "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt" --env "HOME=/home/nonroot")
  if [ "$bin" = loco-resurrect ]; then
    local helm="$LOCO_CACHE/bin/helm-$HELM_VERSION/helm"
    [ -x "$helm" ] || die "stack image: helm is not built yet (tests/minikube/stack build)"
    cp "$helm" "$root/usr/local/bin/helm"
    mkdir -p "$root/usr/share/loco/charts"
    cp -rL "$HERE/../../charts/loco" "$root/usr/share/loco/charts/loco"
    # The root filesystem is read-only in a pod: helm keeps its state under /tmp.
    env+=(--env LOCO_CHART_DIR=/usr/share/loco/charts/loco --env LOCO_HELM=/usr/local/bin/helm
      --env HELM_CACHE_HOME=/tmp/helm/cache --env HELM_CONFIG_HOME=/tmp/helm/config --env HELM_DATA_HOME=/tmp/helm/data)
  fi
  # Owned by root, except the home of nonroot (tar keeps the numeric owners).
  chown -R 0:0 "$root" && chown "$LOCO_IMAGE_USER:$LOCO_IMAGE_USER" "$root/home/nonroot" \
    || die "stack image: setting owners needs root"
  tar -C "$root" --sort=name --mtime=@0 --numeric-owner -cf "$work/layer.tar" . \
    || die "stack image: packing $bin failed"
  local size ref
  size=$(du -h "$work/layer.tar" | cut -f1)
  ref=$({ "$crane" append --insecure --oci-empty-base --new_layer "$work/layer.tar" --new_tag "$reg/loco/$bin:dev" >/dev/null &&
    "$crane" mutate --insecure "$reg/loco/$bin:dev" --set-platform linux/amd64 \
      --entrypoint "/usr/local/bin/$bin" --user "$LOCO_IMAGE_USER:$LOCO_IMAGE_USER" --workdir /home/nonroot \
      "${env[@]}" --tag "$reg/loco/$bin:dev"; } 2>>"$log") \
    || die "stack image: pushing $reg/loco/$bin:dev with crane failed; see $log"
  rm -rf "$work"
  [[ $ref == *@sha256:* ]] || die "crane mutate printed no digest reference for $bin ('$ref'); see $log"
  ref="$reg/loco/$bin@${ref##*@}"
  printf '%s\n' "$ref" >"$STATE/images/loco-$bin.ref"
  say "image $ref (one layer of $size, user $LOCO_IMAGE_USER)"
  echo "$ref"
}
