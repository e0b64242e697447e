#!/usr/bin/env bash
# Installs the Debian packages the test suite runs for real (servers on loopback).
# Does nothing when they are all present; needs root (or sudo) otherwise.
set -euo pipefail

# command -> Debian package
declare -A need=(
  [openssl]=openssl
  [nginx]=nginx-light
  [pg_ctlcluster]=postgresql
)
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
# PostgreSQL's server binaries live outside PATH on Debian.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
