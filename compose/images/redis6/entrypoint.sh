#!/bin/sh
set -e
# Like the official entrypoint: bare flags or a config file mean redis-server.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  # Without a config file protected mode is off (the official image patches the default) and
  # dir is /data. A config file stays the first argument (redis-server reads it only there).
  if [ -n "${1:-}" ] && [ "${1#-}" = "$1" ]; then conf=$1; shift; set -- "$conf" "$@"
  else set -- --protected-mode no --dir /data "$@"; fi
  if [ "$(id -u)" = 0 ]; then
    chown -R redis:redis /data
    exec setpriv --reuid=redis --regid=redis --init-groups redis-server "$@"
  fi
  # Started as another user (compose `user: "999:999"`): no privileges to drop.
  exec redis-server "$@"
fi
exec "$@"
