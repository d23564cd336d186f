#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing incident-sync need.
# Idempotent: installs only what is missing, runs `apt-get update` at most once.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-url1.81-dev libssl-dev openssl
  rapidjson-dev libsqlitecpp-dev libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libyaml-cpp-dev libgtest-dev libxxhash-dev zlib1g-dev
  libpq-dev
  python3 python3-requests clang-format-14
)
# Extra groups, asked for by name: `install-deps.sh systemd` adds the unit
# checks, `monitoring` promtool (Debian's prometheus package; its server is
# not started), `postgresql` the PostgreSQL 15 server the tests start for
# themselves (tests/postgresql/pg_server.sh; no cluster of the system's own
# is created).
for extra in "$@"; do
  case "$extra" in
    systemd) packages+=(systemd) ;;
    fuzz)    packages+=(clang-14 libclang-rt-14-dev) ;;
    monitoring) packages+=(prometheus) ;;  # promtool, for contrib/'s checks
    postgresql)
      packages+=(postgresql-15 postgresql-client-15)
      # Debian's package would create and start a `main` cluster on port
      # 5432; the tests start their own, so ask for none (unless the admin
      # has already configured cluster creation).
      if [[ ! -e /etc/postgresql-common/createcluster.conf ]]; then
        mkdir -p /etc/postgresql-common
        echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
      fi
      ;;
    *) echo "install-deps.sh: unknown group '$extra' (known: systemd, fuzz, monitoring, postgresql)" >&2; exit 64 ;;
  esac
done

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
