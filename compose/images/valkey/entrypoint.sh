#!/bin/sh
set -e
# Like the official entrypoint: bare flags or a config file mean valkey-server.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- valkey-server "$@"; fi
if [ "$1" = valkey-server ] || [ "$1" = redis-server ]; then
  server=$1; shift
  # Without a config file protected mode is off (the official image patches the default) and
  # dir is /data. A config file stays the first argument (the server reads it only there).
  if [ -n "${1:-}" ] && [ "${1#-}" = "$1" ]; then conf=$1; shift; set -- "$conf" "$@"
  else set -- --protected-mode no --dir /data "$@"; fi
  um=$(umask); [ "$um" = 0022 ] && umask 0077
  if [ "$(id -u)" = 0 ]; then
    find /data \! -user valkey -exec chown valkey '{}' +
    exec setpriv --reuid=valkey --regid=valkey --init-groups "$server" "$@"
  fi
  exec "$server" "$@"
fi
exec "$@"
