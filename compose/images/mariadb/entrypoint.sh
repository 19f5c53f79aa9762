#!/bin/bash
# A re-implementation of the official mariadb entrypoint's behaviour: initialise an empty
# /var/lib/mysql once from MARIADB_* (or MYSQL_*) variables and /docker-entrypoint-initdb.d,
# then exec mariadbd as the mysql user.
set -Eeo pipefail

# VAR or VAR_FILE (Docker secrets); MARIADB_X falls back to MYSQL_X as in the official image.
file_env() {
  local var=$1 def=${2:-} mysql=${1/MARIADB_/MYSQL_} val=
  for v in "$var" "$mysql"; do
    if [ -n "${!v:-}" ]; then val=${!v}; break; fi
    local f="${v}_FILE"
    if [ -n "${!f:-}" ]; then val=$(<"${!f}"); break; fi
  done
  export "$var"="${val:-$def}"
}

if [ "${1:0:1}" = - ]; then set -- mariadbd "$@"; fi

if [ "$1" = mariadbd ] || [ "$1" = mysqld ]; then
  if [ "$(id -u)" = 0 ]; then
    mkdir -p /var/lib/mysql /run/mysqld
    find /var/lib/mysql /run/mysqld \! -user mysql -exec chown mysql:mysql '{}' +
    exec setpriv --reuid=mysql --regid=mysql --init-groups "$0" "$@"
  fi
  if [ ! -d /var/lib/mysql/mysql ]; then
    file_env MARIADB_ROOT_PASSWORD
    file_env MARIADB_DATABASE
    file_env MARIADB_USER
    file_env MARIADB_PASSWORD
    file_env MARIADB_ALLOW_EMPTY_ROOT_PASSWORD
    if [ -z "$MARIADB_ROOT_PASSWORD" ] && [ -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" ]; then
      echo "error: database is uninitialized and MARIADB_ROOT_PASSWORD is not set" >&2; exit 1
    fi
    mariadb-install-db --user=mysql --datadir=/var/lib/mysql --auth-root-authentication-method=socket --skip-test-db >/dev/null
    # The init server has no network and a private socket: the healthcheck answers only for the real one.
    sock=/tmp/mariadb-init.sock
    mariadbd --skip-networking --socket="$sock" --datadir=/var/lib/mysql &
    pid=$!
    for _ in $(seq 1 120); do mariadb-admin --socket="$sock" -umysql ping >/dev/null 2>&1 && break; sleep 0.5; done
    # As the mysql OS user, the unix-socket account mariadb-install-db made for it (root is for OS root).
    sql=(mariadb --no-defaults --socket="$sock" -umysql --batch)
    esc() { printf '%s' "$1" | sed "s/'/''/g; s/\\\\/\\\\\\\\/g"; }
    {
      echo "SET @@SESSION.SQL_LOG_BIN=0;"
      echo "DELETE FROM mysql.global_priv WHERE user NOT IN ('mysql.sys', 'mariadb.sys', 'root', 'mysql') OR host NOT IN ('localhost');"
      # root: its password from the network, and the unix socket locally (as the official image).
      echo "ALTER USER 'root'@'localhost' IDENTIFIED VIA mysql_native_password USING PASSWORD('$(esc "$MARIADB_ROOT_PASSWORD")') OR unix_socket;"
      echo "CREATE USER 'root'@'%' IDENTIFIED BY '$(esc "$MARIADB_ROOT_PASSWORD")'; GRANT ALL ON *.* TO 'root'@'%' WITH GRANT OPTION;"
      if [ -n "$MARIADB_DATABASE" ]; then echo "CREATE DATABASE IF NOT EXISTS \`$MARIADB_DATABASE\`;"; fi
      if [ -n "$MARIADB_USER" ]; then
        echo "CREATE USER '$(esc "$MARIADB_USER")'@'%' IDENTIFIED BY '$(esc "$MARIADB_PASSWORD")';"
        if [ -n "$MARIADB_DATABASE" ]; then echo "GRANT ALL ON \`$MARIADB_DATABASE\`.* TO '$(esc "$MARIADB_USER")'@'%';"; fi
      fi
      echo "FLUSH PRIVILEGES;"
    } | "${sql[@]}"
    for f in /docker-entrypoint-initdb.d/*; do
      [ -e "$f" ] || continue
      case "$f" in
        *.sh) echo "$0: running $f"; . "$f" ;;
        *.sql) echo "$0: running $f"; "${sql[@]}" ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} <"$f" ;;
        *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | "${sql[@]}" ${MARIADB_DATABASE:+"$MARIADB_DATABASE"} ;;
        *) echo "$0: ignoring $f" ;;
      esac
    done
    mariadb-admin --socket="$sock" -umysql shutdown
    wait "$pid" || true
    echo "MariaDB init process done. Ready for start up."
  fi
fi
exec "$@"
