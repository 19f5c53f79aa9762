#!/usr/bin/env bash
# Builds the project's local images without any image registry:
#   stackvault-local/base:{bookworm,trixie}  debootstrap --variant=minbase, then docker import
#   stackvault-local/{postgres,redis,chroma,neo4j,app}:<tag>  from compose/images/<name>/
#   stackvault-local/pg-regress:17  FROM stackvault-local/postgres:17 (a second phase, see PARENTS)
# An image is skipped when one with the same content hash (label stackvault.build-hash) exists.
# Usage: scripts/build-images.sh [--force] [NAME...]
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"

force=""; [ "${1:-}" = --force ] && { force=1; shift; }
declare -A TAGS=([postgres]=17 [redis]=7 [chroma]=1 [neo4j]=5-standin [app]=1 [pg-regress]=17)
declare -A BASES=([postgres]=trixie [redis]=bookworm [chroma]=trixie [neo4j]=bookworm [app]=bookworm [pg-regress]=trixie)
# Images built FROM another local image rather than a base: their parent is passed as BASE, is
# built first (added when not named), and its image ID is part of their hash, so a rebuilt
# parent rebuilds them.
declare -A PARENTS=([pg-regress]=postgres)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=(postgres redis chroma neo4j app pg-regress)
for n in "${names[@]}"; do
  p=${PARENTS[$n]:-}
  if [ -n "$p" ] && [[ " ${names[*]} " != *" $p "* ]]; then names+=("$p"); fi
done

sv_docker_answers || sv_die "no Docker engine answers; run scripts/test.sh or start Docker first." 6

image_hash() { docker image inspect -f '{{index .Config.Labels "stackvault.build-hash"}}' "$1" 2>/dev/null || true; }

ensure_base() {
  local suite=$1 ref="stackvault-local/base:$1"
  docker image inspect "$ref" >/dev/null 2>&1 && return 0
  command -v debootstrap >/dev/null || sv_ensure_host_tools
  local dir; dir=$(mktemp -d /var/tmp/stackvault-rootfs.XXXXXX)
  sv_say "debootstrap $suite base (about 30 s)."
  debootstrap --variant=minbase "$suite" "$dir" http://deb.debian.org/debian >"$dir.log" 2>&1 \
    || { tail -5 "$dir.log" >&2; rm -rf "$dir"; sv_die "debootstrap $suite failed (log above)." 1; }
  tar -C "$dir" -c . | docker import - "$ref" >/dev/null
  rm -rf "$dir" "$dir.log"
}

build_one() {
  local name=$1 ctx="$SV_ROOT/compose/images/$1" ref="stackvault-local/$1:${TAGS[$1]}"
  [ -d "$ctx" ] || sv_die "unknown image '$name' (have: ${!TAGS[*]})." 2
  local base=${BASES[$name]} parent=${PARENTS[$name]:-} from from_line
  if [ -n "$parent" ]; then
    from="stackvault-local/$parent:${TAGS[$parent]}"
    from_line="from=$(docker image inspect -f '{{.Id}}' "$from" 2>/dev/null)" || sv_die "$ref needs $from, which is missing." 1
  else
    from="stackvault-local/base:$base" from_line="base=$base"
  fi
  local hash; hash=$( (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "$from_line") | sha256sum | cut -c1-16)
  if [ -z "$force" ] && [ "$(image_hash "$ref")" = "$hash" ]; then return 0; fi
  sv_say "building $ref."
  local started=$SECONDS build_ctx log="/tmp/stackvault-build-$name.log"
  build_ctx=$(mktemp -d /var/tmp/stackvault-ctx.XXXXXX)
  cp -a "$ctx/." "$build_ctx/"
  # npm packages are installed by the host's npm, which already trusts this network's registry
  # set-up; containers would need its CA certificates copied in.
  if [ -f "$ctx/npm-packages" ]; then
    (cd "$build_ctx" && echo '{"private":true}' >package.json \
      && xargs npm install --no-fund --no-audit --omit=dev --no-package-lock <npm-packages) >"$log" 2>&1 \
      || { tail -20 "$log" >&2; rm -rf "$build_ctx"; sv_die "npm install for $ref failed (log above)." 1; }
  fi
  docker build -q --build-arg "BASE=$from" --label "stackvault.build-hash=$hash" \
    -t "$ref" "$build_ctx" >>"$log" 2>&1 \
    || { tail -20 "$log" >&2; rm -rf "$build_ctx"; sv_die "building $ref failed (log above)." 1; }
  rm -rf "$build_ctx"
  sv_say "built $ref in $((SECONDS - started)) s."
}

# Builds run in parallel (bases first, sequentially): downloads overlap with unpacking. Images
# with a local parent run in a second phase, once every parent is built.
for n in "${names[@]}"; do
  ensure_base "${BASES[$n]}"
done
build_phase() {
  local n pids=() rc=0
  for n in "$@"; do build_one "$n" & pids+=($!); done
  for n in "${pids[@]}"; do wait "$n" || rc=1; done
  return $rc
}
first=() second=()
for n in "${names[@]}"; do if [ -n "${PARENTS[$n]:-}" ]; then second+=("$n"); else first+=("$n"); fi; done
build_phase "${first[@]}" || exit 1
[ ${#second[@]} -eq 0 ] || build_phase "${second[@]}" || exit 1
