#!/bin/bash
# Stand-in for Dify's docker/pgvector/docker-entrypoint.sh (mounted over /docker-entrypoint.sh
# and used as the service's entrypoint). Upstream's script optionally builds the pg_bigm
# extension from source when PG_BIGM=true (needs the internet), then hands over to the image's
# own entrypoint. The hand-over is what matters for this layout; pg_bigm is not available
# offline, so PG_BIGM=true is refused instead of built.
if [ "${PG_BIGM:-false}" = true ]; then
  echo "pg_bigm cannot be built offline in this layout; set PGVECTOR_PG_BIGM=false" >&2
  exit 1
fi
exec /usr/local/bin/docker-entrypoint.sh postgres
