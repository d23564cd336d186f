# Shared by docker_test.sh and deb_test.sh (sourced, not run): the container
# tools, and debian:bookworm-slim made locally with mmdebstrap when the store
# lacks it (there may be no registry access). The caller defines step, die,
# elapsed, $work and $base.

# One container test at a time on this machine (the base image and the
# image tag are shared), then the tools. Sets up the work area $work
# (prefix $1) and a clean-up that stops $sim_pid and removes $ctr.
begin_container_test() {
  mkdir -p /var/lib/containers
  exec 9>/var/lib/containers/.incident-sync-docker-test.lock
  flock 9
  install_container_tools
  work=$(mktemp -d "/tmp/$1.XXXXXX")
  sim_pid=
  ctr=
  trap end_container_test EXIT
  trap 'exit 130' INT TERM
}

end_container_test() {
  local rc=$?
  if [[ -n $sim_pid ]]; then kill "$sim_pid" 2>/dev/null || true; wait "$sim_pid" 2>/dev/null || true; fi
  if [[ -n $ctr ]]; then buildah rm "$ctr" >/dev/null 2>&1 || true; fi
  rm -rf "$work"
  exit "$rc"
}

# Installs buildah, podman, mmdebstrap and sqlite3 when missing (root, apt).
install_container_tools() {
  missing=()
  for pair in buildah:buildah podman:podman mmdebstrap:mmdebstrap mmtarfilter:mmdebstrap sqlite3:sqlite3; do
    command -v "${pair%%:*}" >/dev/null || missing+=("${pair#*:}")
  done
  if ((${#missing[@]})); then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    step "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get -o DPkg::Lock::Timeout=600 update -qq
    apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

# Makes $base (debian:bookworm-slim) unless the local store has it.
ensure_base_image() {
  if buildah inspect --type image "$base" >/dev/null 2>&1; then
    echo "base image $base: present"
  else
    step "making $base with mmdebstrap (no registry needed)"
    t0=$(date +%s)
    # Like the official slim image: minbase, merged /usr without the usrmerge
    # package (which drags in perl), no man pages, docs or locales, apt keeping
    # no package caches (the official image's docker-clean; with it, mmdebstrap's
    # own clean-up no longer finds the *.bin caches, so they go here), no /dev nodes.
    mirror=()
    [[ -n ${DOCKER_TEST_MIRROR:-} ]] && mirror=("$DOCKER_TEST_MIRROR")
    # shellcheck disable=SC2016 # $1 is expanded by mmdebstrap's hook shell
    mmdebstrap --quiet --variant=minbase \
      --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
      --dpkgopt='path-exclude=/usr/share/man/*' \
      --dpkgopt='path-exclude=/usr/share/locale/*' \
      --dpkgopt='path-include=/usr/share/locale/locale.alias' \
      --dpkgopt='path-exclude=/usr/share/doc/*' \
      --dpkgopt='path-include=/usr/share/doc/*/copyright' \
      --dpkgopt='path-exclude=/usr/share/info/*' \
      --customize-hook='rm -f "$1/etc/hostname"; : > "$1/etc/resolv.conf"' \
      --customize-hook='printf "%s\n" \
          "DPkg::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" \
          "APT::Update::Post-Invoke { \"rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true\"; };" \
          "Dir::Cache::pkgcache \"\";" "Dir::Cache::srcpkgcache \"\";" > "$1/etc/apt/apt.conf.d/docker-clean"
          rm -f "$1"/var/cache/apt/*.bin' \
      --customize-hook='echo "Acquire::Languages \"none\";" > "$1/etc/apt/apt.conf.d/docker-no-languages"' \
      bookworm - "${mirror[@]}" </dev/null 2>"$work/mmdebstrap.log" |
      mmtarfilter --path-exclude='/dev/*' > "$work/rootfs.tar" || {
      tail -n 30 "$work/mmdebstrap.log"
      die "mmdebstrap could not make the base image (is the Debian archive reachable?)"
    }
    podman import --quiet --change 'CMD ["bash"]' "$work/rootfs.tar" "$base" >/dev/null ||
      die "podman import $base"
    rm -f "$work/rootfs.tar"
    buildah inspect --type image "$base" >/dev/null 2>&1 || die "$base not resolvable after podman import"
    echo "base image $base: made in $(elapsed "$t0") s"
  fi
}

# buildah_run ARGS... : `buildah run --isolation chroot ARGS...`, run again (up
# to 3 times) when buildah itself failed before the command started. CI saw
# "Close_Fd sealing memfd copy: Device or resource busy" from buildah's
# re-exec once, with the same status 1 a failing command gives. The command's
# error output is held until it ends (to tell the two apart); each retry is
# noted in $work/retries.log, which the caller prints at the end.
buildah_run() {
  local attempt rc err
  err=$(mktemp "$work/buildah_run.XXXXXX")
  for attempt in 1 2 3; do
    rc=0
    buildah run --isolation chroot "$@" 2>"$err" || rc=$?
    if ((rc != 0)) && grep -q "sealing memfd" "$err"; then
      echo "buildah run failed before its command (attempt $attempt): $(head -n1 "$err")" >> "$work/retries.log"
      continue
    fi
    cat "$err" >&2
    rm -f "$err"
    return "$rc"
  done
  cat "$err" >&2
  rm -f "$err"
  return "$rc"
}

# ctr_test CONDITION: whether the shell CONDITION holds in $ctr. The answer is
# printed from inside the container (through buildah_run, which runs again
# when buildah itself failed), so buildah's own failure is never taken for a
# false condition: no answer at all ends the test.
ctr_test() {
  local answer
  answer=$(buildah_run "$ctr" -- sh -c "if $1; then echo yes; else echo no; fi") || true
  case $answer in
    yes) return 0 ;;
    no) return 1 ;;
    *) die "buildah run gave no answer to \"$1\"" ;;
  esac
}

# print_retries: what buildah_run ran again, if anything.
print_retries() {
  if [[ -s $work/retries.log ]]; then
    echo "buildah's own failures, run again:"
    cat "$work/retries.log"
  fi
}
