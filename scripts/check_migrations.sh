#!/usr/bin/env bash
# The migrations build the schema the models describe, on SQLite and on PostgreSQL:
# `alembic upgrade head` on an empty database, then `alembic check` finds nothing to add.
set -euo pipefail
BIN=${BIN:-.venv/bin}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CITYLOOP_DATABASE_URL="sqlite:///$tmp/migrations.db"
$BIN/alembic upgrade head
$BIN/alembic check
if pg_isready -q -h 127.0.0.1 -p 5432 2>/dev/null; then
  db="cityloop_migrations_$$"
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db"
  export CITYLOOP_DATABASE_URL="postgresql+psycopg://postgres@127.0.0.1:5432/$db"
  $BIN/alembic upgrade head
  $BIN/alembic check
  psql -q -h 127.0.0.1 -U postgres -d postgres -c "DROP DATABASE $db WITH (FORCE)"
elif [ -n "${CI:-}" ]; then
  echo "PostgreSQL unreachable in CI"; exit 1
fi
