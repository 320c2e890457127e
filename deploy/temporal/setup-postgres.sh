#!/bin/sh
# One-shot job (temporalio/admin-tools): creates Temporal's two PostgreSQL databases and brings
# their schemas to this version. Safe on every start: existing databases and schemas are kept,
# and only missing updates are applied (upgrade the server one minor version at a time).
set -eu
: "${POSTGRES_SEEDS:?}" "${POSTGRES_USER:?}" "${SQL_PASSWORD:?}"
port=${DB_PORT:-5432}
schema=/etc/temporal/schema/postgresql/v12

tries=0
until nc -z -w 2 "$POSTGRES_SEEDS" "$port"; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "PostgreSQL at $POSTGRES_SEEDS:$port did not answer" >&2; exit 1; }
  sleep 1
done

sql() { temporal-sql-tool --plugin postgres12 --ep "$POSTGRES_SEEDS" -p "$port" -u "$POSTGRES_USER" "$@"; }
for pair in temporal:temporal visibility:temporal_visibility; do
  kind=${pair%%:*}
  db=${pair#*:}
  out=$(sql --db "$db" create 2>&1) || echo "$out" | grep -qi 'already exists' || {
    echo "$out" >&2
    exit 1
  }
  # setup-schema -v 0.0 leaves an initialised database as it is; update-schema applies what is new.
  sql --db "$db" setup-schema -v 0.0
  sql --db "$db" update-schema -d "$schema/$kind/versioned"
  echo "database $db is up to date"
done
