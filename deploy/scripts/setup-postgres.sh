#!/bin/sh
# One-shot Temporal schema job (modelled on samples-server/compose/scripts/setup-postgres.sh).
set -eu
TOOL="temporal-sql-tool --plugin postgres12 --ep ${POSTGRES_SEEDS} -u ${POSTGRES_USER} -p ${DB_PORT:-5432}"
for db in temporal temporal_visibility; do
  case "$db" in temporal) dir=temporal ;; *) dir=visibility ;; esac
  $TOOL --db "$db" create
  $TOOL --db "$db" setup-schema -v 0.0
  $TOOL --db "$db" update-schema -d "/etc/temporal/schema/postgresql/v12/${dir}/versioned"
done
