#!/bin/bash
# Minimal re-implementation of the official postgres entrypoint: initialise an empty PGDATA
# once, then exec postgres as the postgres user.
set -euo pipefail
: "${POSTGRES_USER:=postgres}" "${POSTGRES_DB:=$POSTGRES_USER}"
if [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chown -R postgres:postgres "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  pwfile=$(mktemp)
  printf '%s' "${POSTGRES_PASSWORD:-}" >"$pwfile"
  pwopt=(); [ -n "${POSTGRES_PASSWORD:-}" ] && pwopt=(--pwfile="$pwfile")
  initdb --username="$POSTGRES_USER" "${pwopt[@]}" -D "$PGDATA" --auth-local=trust \
    --auth-host="$([ -n "${POSTGRES_PASSWORD:-}" ] && echo scram-sha-256 || echo trust)" >/dev/null
  rm -f "$pwfile"
  echo "host all all all $([ -n "${POSTGRES_PASSWORD:-}" ] && echo scram-sha-256 || echo trust)" >>"$PGDATA/pg_hba.conf"
  # The init server listens on a private socket directory only, so pg_isready on the normal
  # socket answers first for the real server (no "database system is shutting down" race).
  mkdir -p /tmp/pginit
  pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp/pginit" -w start >/dev/null
  if [ "$POSTGRES_DB" != postgres ]; then
    psql -v ON_ERROR_STOP=1 -h /tmp/pginit --username "$POSTGRES_USER" --dbname postgres \
      -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
  fi
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
  echo "PostgreSQL init process complete; ready for start up."
fi
if [ "${1:-}" = postgres ]; then shift; exec postgres -c listen_addresses='*' "$@"; fi
exec "$@"
