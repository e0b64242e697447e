#!/usr/bin/env bash
# Installs the Debian packages that certvigil's tests (or benchmarks) run for real on
# loopback. Does nothing when they are all present; needs root (or sudo) otherwise.
#
#   scripts/install-system-deps.sh          what the test suite needs
#   scripts/install-system-deps.sh bench    that, plus the benchmarks' servers and peers
set -euo pipefail

# command -> Debian package
declare -A need=(
  [openssl]=openssl
  # the monitoring integrations' tests run the real consumers (docs/monitoring.md)
  [nagios4]=nagios4-core
  [icinga2]=icinga2-bin
  [promtool]=prometheus
  # the distributed scan's tests start a real broker (docs/scaling.md)
  [redis-server]=redis-server
  # a real Zabbix 6.0 imports contrib/zabbix's template and runs its external check
  [zabbix_server]=zabbix-server-pgsql
  [php]=php-cli
  # the dashboard's browser tests drive Debian's headless Chromium through Selenium
  [chromium]=chromium
  [chromedriver]=chromium-driver
  # the CT watch's HTTP/2 test reads a log served by nginx (and the benchmarks use it)
  [nginx]=nginx-light
)
if [ "${1:-tests}" = "bench" ]; then
  need+=([sslscan]=sslscan [testssl]=testssl.sh)
fi
missing=()
for cmd in "${!need[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || [ -x "/usr/sbin/$cmd" ] || missing+=("${need[$cmd]}")
done
# PostgreSQL's server binaries live outside PATH on Debian; the store tests start one.
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing+=(postgresql)
# Zabbix's API is its PHP frontend, which needs PHP's PostgreSQL driver.
[ -e /usr/share/zabbix/api_jsonrpc.php ] || missing+=(zabbix-frontend-php)
php -m 2>/dev/null | grep -qx pgsql || missing+=(php-pgsql)

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
