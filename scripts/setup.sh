#!/bin/sh
# Installs what the project needs on a fresh machine: npm dependencies (which pin Node 24 through the
# `node` devDependency) and, for the demo and the tests, Debian's InfluxDB 1.x when `influxd` is missing.
set -e
cd "$(dirname "$0")/.."
if [ ! -d node_modules ] || [ package.json -nt node_modules/.package-lock.json ] || { [ -f package-lock.json ] && [ package-lock.json -nt node_modules/.package-lock.json ]; }; then
  echo "[setup] npm install" >&2
  npm install --no-audit --no-fund --loglevel=error
fi
if [ -z "$INFLUX_URL" ] && ! command -v influxd >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] installing Debian's influxdb package (InfluxDB 1.x)" >&2
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends influxdb >/dev/null
    # Debian's package starts a system-wide influxd on 8086; citysense runs its own, so stop that one.
    (systemctl stop influxdb 2>/dev/null || service influxdb stop 2>/dev/null || true) >/dev/null 2>&1
  else
    echo "[setup] influxd is missing. Install InfluxDB 1.x (Debian: 'apt-get install influxdb' as root) or set INFLUX_URL to an InfluxDB you run." >&2
    exit 1
  fi
fi
# mosquitto_pub is how the README (and a test of the README's example) publishes a reading by hand.
if ! command -v mosquitto_pub >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "[setup] installing Debian's mosquitto-clients (mosquitto_pub)" >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto-clients >/dev/null 2>&1 \
    || { apt-get update -qq >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends mosquitto-clients >/dev/null 2>&1; } \
    || echo "[setup] could not install mosquitto-clients; the README's mosquitto_pub example needs it" >&2
fi
