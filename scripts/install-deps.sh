#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing incident-sync need.
# Idempotent: installs only what is missing, runs `apt-get update` at most once.
set -euo pipefail

packages=(
  g++ cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-url1.81-dev libssl-dev openssl
  rapidjson-dev libsqlitecpp-dev libsqlite3-dev sqlite3
  libspdlog-dev libfmt-dev libyaml-cpp-dev libgtest-dev libsystemd-dev libxxhash-dev zlib1g-dev
  python3 python3-requests clang-format-14
)
# Extra groups, asked for by name: `install-deps.sh systemd` adds the unit
# checks, `monitoring` promtool (Debian's prometheus package; its server is
# not started).
for extra in "$@"; do
  case "$extra" in
    systemd) packages+=(systemd) ;;
    fuzz)    packages+=(clang-14 libclang-rt-14-dev) ;;
    monitoring) packages+=(prometheus) ;;  # promtool, for contrib/'s checks
    *) echo "install-deps.sh: unknown group '$extra' (known: systemd, fuzz, monitoring)" >&2; exit 64 ;;
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
