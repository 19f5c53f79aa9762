#!/usr/bin/env bash
# stackvault front door. Sets itself up on first run (Node >= 22, dependencies, build), then
# passes everything to the CLI. `demo` also brings up a Docker engine and local images when
# needed; no other command installs anything.
set -euo pipefail
source "$(dirname "$0")/scripts/lib/setup.sh"

if [ -f "$SV_ROOT/dist/.built" ]; then
  sv_setup_cli
else
  sv_say "first run: setting up Node, dependencies and the build (once, about a minute)."
  SV_QUIET=1 sv_setup_cli
fi

case "${1:-}" in
  demo)
    sv_ensure_host_tools
    sv_ensure_docker_engine
    ;;
esac

# The same Node flags as dist/cli.js's first line (src/cli.ts says why; a unit test keeps them equal).
exec node --max-semi-space-size=1 "$SV_ROOT/dist/cli.js" "$@"
