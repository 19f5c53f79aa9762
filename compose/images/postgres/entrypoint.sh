#!/bin/bash
# A re-implementation of the official postgres entrypoint's behaviour: initialise an empty
# PGDATA once (POSTGRES_* variables, POSTGRES_INITDB_ARGS, /docker-entrypoint-initdb.d), then
# exec postgres as the postgres user. Like the official one it runs without `set -u`, so
# sourced init scripts see the same shell options.
set -Eeo pipefail

# VAR or VAR_FILE (Docker secrets), never both.
file_env() {
  local var=$1 def=${2:-} fvar="${1}_FILE" val
  if [ -n "${!var:-}" ] && [ -n "${!fvar:-}" ]; then
    echo "error: both $var and $fvar are set (but are exclusive)" >&2; exit 1
  fi
  val=$def
  if [ -n "${!var:-}" ]; then val=${!var}; elif [ -n "${!fvar:-}" ]; then val=$(<"${!fvar}"); fi
  export "$var"="$val"
  unset "$fvar"
}

# `docker run IMAGE -c x=y` means postgres -c x=y
if [ "${1:0:1}" = - ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ] && [ "$(id -u)" = 0 ]; then
  mkdir -p "$PGDATA" /var/run/postgresql
  chmod 700 "$PGDATA"
  find "$PGDATA" \! -user postgres -exec chown postgres:postgres '{}' +
  chown postgres:postgres /var/run/postgresql
  exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [ "$1" = postgres ]; then
  mkdir -p "$PGDATA"
  chmod 700 "$PGDATA" 2>/dev/null || :
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    file_env POSTGRES_PASSWORD
    file_env POSTGRES_USER postgres
    file_env POSTGRES_DB "$POSTGRES_USER"
    file_env POSTGRES_INITDB_ARGS
    : "${POSTGRES_HOST_AUTH_METHOD:=$([ -n "$POSTGRES_PASSWORD" ] && echo scram-sha-256 || echo trust)}"
    pwfile=$(mktemp)
    printf '%s' "$POSTGRES_PASSWORD" >"$pwfile"
    pwopt=(); [ -n "$POSTGRES_PASSWORD" ] && pwopt=(--pwfile="$pwfile")
    # POSTGRES_INITDB_ARGS comes last so its --auth-host / --auth-local win, as in the official image.
    # shellcheck disable=SC2086
    initdb --username="$POSTGRES_USER" "${pwopt[@]}" -D "$PGDATA" --auth-local=trust \
      --auth-host="$POSTGRES_HOST_AUTH_METHOD" $POSTGRES_INITDB_ARGS >/dev/null
    rm -f "$pwfile"
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD" >>"$PGDATA/pg_hba.conf"

    # The init server listens on a private socket directory only, so pg_isready on the normal
    # socket answers first for the real server (no "database system is shutting down" race).
    # Init scripts reach it through PGHOST, as `psql` without -h does in the official image.
    mkdir -p /tmp/pginit
    export PGHOST=/tmp/pginit PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k /tmp/pginit" -w start >/dev/null
    psql_run=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ "$POSTGRES_DB" != postgres ]; then
      "${psql_run[@]}" --dbname postgres -c "CREATE DATABASE \"$POSTGRES_DB\"" >/dev/null
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      [ -e "$f" ] || continue
      case "$f" in
        *.sh)
          if [ -x "$f" ]; then echo "$0: running $f"; "$f"
          else echo "$0: sourcing $f"; # shellcheck disable=SC1090
            . "$f"; fi ;;
        *.sql) echo "$0: running $f"; "${psql_run[@]}" --dbname "$POSTGRES_DB" -f "$f" >/dev/null ;;
        *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${psql_run[@]}" --dbname "$POSTGRES_DB" >/dev/null ;;
        *) echo "$0: ignoring $f" ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    unset PGHOST PGPASSWORD
    echo "PostgreSQL init process complete; ready for start up."
  fi
  shift
  exec postgres -c listen_addresses='*' "$@"
fi
exec "$@"
