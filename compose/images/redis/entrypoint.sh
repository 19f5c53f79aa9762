#!/bin/sh
set -e
if [ "${1#-}" != "$1" ]; then set -- redis-server "$@"; fi
if [ "$1" = redis-server ]; then
  shift
  [ "$(id -u)" = 0 ] && chown -R redis:redis /data
  # The official image runs without a config file, so protected mode is off and dir is /data.
  exec setpriv --reuid=redis --regid=redis --init-groups redis-server --protected-mode no --dir /data "$@"
fi
exec "$@"
