#!/bin/bash
# Stand-in for n8n-hosting's init-data.sh: on the first start of postgres, when the non-root
# user's name and password are given, create that user and let it use the database and create
# tables in its public schema. The names go into the SQL unquoted, as upstream's do (so a name
# with capitals becomes lower case); without them it only says so.
set -e
if [ -z "${POSTGRES_NON_ROOT_USER:-}" ] || [ -z "${POSTGRES_NON_ROOT_PASSWORD:-}" ]; then
  echo "SETUP INFO: No Environment variables given!"
  exit 0
fi
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE USER ${POSTGRES_NON_ROOT_USER} WITH PASSWORD '${POSTGRES_NON_ROOT_PASSWORD}';
GRANT ALL PRIVILEGES ON DATABASE ${POSTGRES_DB} TO ${POSTGRES_NON_ROOT_USER};
GRANT CREATE ON SCHEMA public TO ${POSTGRES_NON_ROOT_USER};
SQL
