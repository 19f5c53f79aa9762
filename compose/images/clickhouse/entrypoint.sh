#!/bin/sh
set -e
# Like the official entrypoint: no arguments (or bare flags) start the server as `clickhouse`,
# after taking ownership of its data and log directories when started as root.
if [ $# -eq 0 ] || [ "${1#-}" != "$1" ]; then
  if [ "$(id -u)" = 0 ]; then
    chown -R clickhouse:clickhouse /var/lib/clickhouse /var/log/clickhouse-server
    exec setpriv --reuid=clickhouse --regid=clickhouse --init-groups clickhouse-server --config-file="$CLICKHOUSE_CONFIG" "$@"
  fi
  exec clickhouse-server --config-file="$CLICKHOUSE_CONFIG" "$@"
fi
exec "$@"
