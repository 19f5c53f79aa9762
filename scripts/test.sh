#!/usr/bin/env bash
# The one test command (README, .ci/run): on a fresh Debian machine it installs what is
# missing (Node 24 locally, npm packages, Docker engine, host tools, local images), then runs
# every unit and integration test against the real engine. Extra arguments go to vitest.
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"
started=$SECONDS
sv_setup_cli
sv_ensure_host_tools
sv_ensure_docker_engine
"$SV_ROOT/scripts/build-images.sh"
sv_say "set-up done in $((SECONDS - started)) s; type-checking tests, then running them."
cd "$SV_ROOT"
node_modules/.bin/biome ci --error-on-warnings . || sv_die "formatting or lint findings (above); 'node_modules/.bin/biome check --write .' fixes most." 1
node_modules/.bin/tsc -p tsconfig.test.json || sv_die "type errors in src/ or test/ (above)." 1
export TESTCONTAINERS_RYUK_DISABLED=true
exec node_modules/.bin/vitest run "$@"
