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
