#!/bin/bash
# Stand-in for mem0's server/init-db.sh: on first start of the postgres service, create the
# app's second database (users, auth, API keys) next to the default one that holds the vectors.
set -e
db=${APP_DB_NAME:-mem0_app}
exists=$(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" -Atc \
  "SELECT 1 FROM pg_database WHERE datname = '$db'")
[ "$exists" = 1 ] || psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
  -c "CREATE DATABASE \"$db\""
