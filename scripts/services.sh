#!/usr/bin/env bash
# Start the local services the test suite talks to, when they are installed but down.
# On a laptop without them the PostgreSQL half of the tests is skipped; in CI (CI=true) a
# missing PostgreSQL is an error.
set -u
pg_up() { pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; }
if command -v pg_isready >/dev/null 2>&1; then
  if ! pg_up; then
    echo "starting PostgreSQL"
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n 1)" main start || true
    for _ in $(seq 1 30); do pg_up && break; sleep 1; done
  fi
  pg_up && echo "PostgreSQL is up" || { echo "PostgreSQL did not start"; [ -z "${CI:-}" ] || exit 1; }
else
  echo "PostgreSQL is not installed here: its tests will be skipped"
  [ -z "${CI:-}" ] || exit 1
fi

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
if command -v mosquitto >/dev/null 2>&1; then
  if ! port_open 1883; then
    echo "starting Mosquitto"
    mosquitto -d -c /etc/mosquitto/mosquitto.conf || true
    for _ in $(seq 1 20); do port_open 1883 && break; sleep 0.5; done
  fi
  port_open 1883 && echo "Mosquitto is up" || { echo "Mosquitto did not start"; [ -z "${CI:-}" ] || exit 1; }
else
  echo "Mosquitto is not installed here: the MQTT tests will be skipped"
  [ -z "${CI:-}" ] || exit 1
fi
exit 0
