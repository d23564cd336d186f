#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test run (ctest fixture `postgresql`).
#
#   pg_server.sh start DIR   initdb in DIR/data, start on 127.0.0.1 at a free
#                            port; writes DIR/url (a superuser URL, no password)
#                            and DIR/port
#   pg_server.sh stop DIR    stop it and remove DIR
#
# PostgreSQL refuses to run as root, and CI runs as root: then the server
# runs as the unprivileged user `nobody`. Role `isync_pw` needs a password
# (scram-sha-256, its password in DIR/pw_password) for the tests of password
# handling; every other role is trusted on 127.0.0.1. fsync is off: the data
# is thrown away, and the tests check transactions, not the disk; with
# PG_DURABLE=1 (the benchmark) the server keeps PostgreSQL's defaults.
set -euo pipefail
action=${1:?start|stop}
dir=${2:?directory}

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)
if [[ -z "$bindir" || ! -x "$bindir/initdb" ]]; then
  echo "pg_server.sh: PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin;" \
       "install them: sudo scripts/install-deps.sh (Debian: postgresql-15)" >&2
  exit 1
fi

as_server_user() {
  if [[ $(id -u) == 0 ]]; then
    runuser -u nobody -- "$@"
  else
    "$@"
  fi
}

case "$action" in
start)
  if [[ -f "$dir/data/postmaster.pid" ]]; then "$0" stop "$dir" || true; fi
  rm -rf "$dir"
  mkdir -p "$dir"
  if [[ $(id -u) == 0 ]]; then
    chown nobody "$dir"
    if ! runuser -u nobody -- test -w "$dir"; then
      echo "pg_server.sh: the user nobody, who runs the server when this runs as root, cannot reach $dir" \
           "(a parent directory is private); use a directory under /tmp" >&2
      exit 1
    fi
  fi
  as_server_user "$bindir/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=trust \
    -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
  # First match wins: the password role must authenticate; all others are trusted.
  as_server_user sh -c "printf '%s\n' 'host all isync_pw 127.0.0.1/32 scram-sha-256' \
    'host all all 127.0.0.1/32 trust' 'local all all trust' > '$dir/data/pg_hba.conf'"
  settings="-c max_connections=200"
  if [[ ${PG_DURABLE:-0} != 1 ]]; then
    settings+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
  fi
  for attempt in $(seq 1 20); do
    port=$((20000 + RANDOM % 30000))
    if as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 $settings" start >/dev/null; then
      break
    fi
    port=""
  done
  if [[ -z "$port" ]]; then cat "$dir/server.log" >&2; exit 1; fi
  pw=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
  "$bindir/psql" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 \
    -c "CREATE ROLE isync_pw LOGIN SUPERUSER PASSWORD '$pw'" >/dev/null
  umask 077
  printf '%s\n' "$pw" >"$dir/pw_password"
  echo "$port" >"$dir/port"
  echo "postgresql://postgres@127.0.0.1:$port/postgres" >"$dir/url"
  echo "PostgreSQL $("$bindir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir/data)"
  ;;
stop)
  if [[ -f "$dir/data/postmaster.pid" ]]; then
    as_server_user "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "pg_server.sh: unknown action $action (start|stop)" >&2
  exit 2
  ;;
esac
