#!/bin/bash
# Neo4j stand-in process: creates the official on-disk layout once, writes the auth file from
# NEO4J_AUTH (as a hash, never the password), then idles until SIGTERM and exits 0.
set -euo pipefail
if [ "$(id -u)" = 0 ]; then
  chown -R neo4j:neo4j /data /logs
  exec setpriv --reuid=7474 --regid=7474 --clear-groups "$0" "$@"
fi
for db in neo4j system; do
  mkdir -p "/data/databases/$db" "/data/transactions/$db"
  [ -f "/data/databases/$db/neostore" ] || head -c 8192 /dev/urandom >"/data/databases/$db/neostore"
  [ -f "/data/transactions/$db/neostore.transaction.db.0" ] || : >"/data/transactions/$db/neostore.transaction.db.0"
done
if [ -n "${NEO4J_AUTH:-}" ] && [ "$NEO4J_AUTH" != none ]; then
  mkdir -p /data/dbms
  printf 'neo4j:SHA-256,%s:\n' "$(printf '%s' "${NEO4J_AUTH#*/}" | sha256sum | cut -d' ' -f1)" >/data/dbms/auth
fi
echo "neo4j stand-in started"
trap 'echo "neo4j stand-in stopping"; sync; exit 0' TERM INT
while :; do sleep 3600 & wait $! || true; done
