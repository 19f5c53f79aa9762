#!/usr/bin/env bash
# stackvault front door. Sets itself up on first run (Node >= 22, dependencies, build), then
# passes everything to the CLI. `demo` also brings up a Docker engine and local images when
# needed; no other command installs anything.
set -euo pipefail
source "$(dirname "$0")/scripts/lib/setup.sh"

first_run=""
[ -f "$SV_ROOT/dist/.built" ] || first_run=1
[ -n "$first_run" ] && sv_say "first run: setting up Node, dependencies and the build (once)."
sv_setup_cli

case "${1:-}" in
  demo)
    sv_ensure_host_tools
    sv_ensure_docker_engine
    ;;
esac

exec node "$SV_ROOT/dist/cli.js" "$@"
