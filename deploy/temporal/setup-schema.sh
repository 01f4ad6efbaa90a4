#!/bin/sh
# Creates Temporal's two PostgreSQL databases when missing and brings their
# schemas (persistence and SQL visibility) to the version the server
# embeds; safe to run on every start. The same steps for usersync's tests
# (bin/temporal-sql-tool) and docker-compose.yml (temporalio/admin-tools).
#
#   TEMPORAL_SQL_TOOL       the schema tool (default: temporal-sql-tool on PATH)
#   TEMPORAL_DB_HOST, TEMPORAL_DB_PORT, TEMPORAL_DB_USER, TEMPORAL_DB_PASSWORD
#   TEMPORAL_DB, TEMPORAL_VISIBILITY_DB   the two databases' names
set -eu

tool="${TEMPORAL_SQL_TOOL:-temporal-sql-tool}"
host="${TEMPORAL_DB_HOST:-127.0.0.1}"
port="${TEMPORAL_DB_PORT:-5432}"
user="${TEMPORAL_DB_USER:-postgres}"
export SQL_PASSWORD="${TEMPORAL_DB_PASSWORD:-}"


setup() {
  db="$1"
  schema="$2"
  # create-database fails on a database that exists: that is the case of
  # every start after the first.
  "$tool" --plugin postgres12 --endpoint "$host" --port "$port" --user "$user" --database "$db" create-database 2>/dev/null ||
    echo "setup-schema: database $db exists"
  "$tool" --plugin postgres12 --endpoint "$host" --port "$port" --user "$user" --database "$db" setup-schema -v 0.0
  "$tool" --plugin postgres12 --endpoint "$host" --port "$port" --user "$user" --database "$db" update-schema --schema-name "$schema"
}

setup "${TEMPORAL_DB:-temporal}" postgresql/v12/temporal
setup "${TEMPORAL_VISIBILITY_DB:-temporal_visibility}" postgresql/v12/visibility
