#!/usr/bin/env bash
# Builds the project's local images without any image registry:
#   stackvault-local/base:{bookworm,trixie}  debootstrap --variant=minbase, then docker import
#   stackvault-local/{postgres,mariadb,redis,chroma,neo4j,app,valkey,appstub,sshd,clickhouse}:<tag>  from compose/images/<name>/
#     (clickhouse:18 is Debian bookworm's real ClickHouse 18.16, a store stackvault has no driver for)
#   stackvault-local/redis:6  from compose/images/redis/ on bullseye (Redis 6.0 keeps its AOF in one file)
#   stackvault-local/postgres:13  from compose/images/postgres/ on bullseye with PG_MAJOR=13 (bullseye
#     main's 13.16, whose psql predates \restrict; the image gets no bullseye-security source)
#   stackvault-local/mariadb:10.5  from compose/images/mariadb/ on bullseye (bullseye main's 10.5.23,
#     whose client predates the sandbox command \-; no bullseye-security source either)
#   stackvault-local/{pgvector,pg-regress}:17  FROM stackvault-local/postgres:17, so built after it
# An image is skipped when one with the same content hash (label stackvault.build-hash) exists.
# An optional compose/images/<name>/env-probe ("VARIABLE shell-command" lines) sets ENV
# VARIABLE to the command's output in the built image, e.g. the package version in PG_VERSION,
# as the official images state their version in their environment.
# An image name maps to its repository and build context: redis6 builds stackvault-local/redis:6
# (and redis8 stackvault-local/redis:8, Debian trixie's Redis 8.0)
# from compose/images/redis on another base; postgres13 builds stackvault-local/postgres:13,
# mariadb105 stackvault-local/mariadb:10.5.
# BUILD_ARGS adds per-image `docker build --build-arg` values (space-separated NAME=VALUE); they
# count in the image's content hash.
# Usage: scripts/build-images.sh [--force] [NAME...]
set -euo pipefail
source "$(dirname "$0")/lib/setup.sh"

force=""; [ "${1:-}" = --force ] && { force=1; shift; }
declare -A TAGS=([mariadb]=11 [postgres]=17 [redis]=7 [redis6]=6 [redis8]=8 [chroma]=1 [neo4j]=5-standin [app]=1 [valkey]=8 [appstub]=1 [sshd]=1 [pgvector]=17 [pg-regress]=17 [postgres13]=13 [mariadb105]=10.5 [clickhouse]=18)
# A base is a debootstrap suite, or another image of this script (built first, in a later batch).
declare -A BASES=([postgres]=trixie [redis]=bookworm [redis6]=bullseye [redis8]=trixie [chroma]=trixie [neo4j]=bookworm [app]=bookworm
                  [mariadb]=trixie [valkey]=trixie [appstub]=bookworm [sshd]=bookworm [pgvector]=postgres [pg-regress]=postgres [postgres13]=bullseye [mariadb105]=bullseye [clickhouse]=bookworm)
ALL=(postgres postgres13 mariadb mariadb105 redis redis6 redis8 chroma neo4j app valkey appstub sshd clickhouse pgvector pg-regress)
names=("$@"); [ ${#names[@]} -gt 0 ] || names=("${ALL[@]}")

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

is_image_base() { [ -n "${TAGS[$1]:-}" ]; }
declare -A REPOS=([redis6]=redis [redis8]=redis [postgres13]=postgres [mariadb105]=mariadb)
declare -A CONTEXTS=([redis6]=redis [redis8]=redis [postgres13]=postgres [mariadb105]=mariadb)
declare -A BUILD_ARGS=([postgres13]="PG_MAJOR=13")
image_ref() { echo "stackvault-local/${REPOS[$1]:-$1}:${TAGS[$1]}"; }
base_ref() { if is_image_base "$1"; then image_ref "$1"; else echo "stackvault-local/base:$1"; fi; }

build_one() {
  local name=$1 ctx="$SV_ROOT/compose/images/${CONTEXTS[$1]:-$1}" ref; ref=$(image_ref "$1")
  [ -d "$ctx" ] || sv_die "unknown image '$name' (have: ${!TAGS[*]})." 2
  local base=${BASES[$name]} base_id=""
  # An image built FROM another one of ours is rebuilt whenever that one changes.
  if is_image_base "$base"; then base_id=$(docker image inspect -f '{{.Id}}' "$(base_ref "$base")"); fi
  local build_args=() arg
  for arg in ${BUILD_ARGS[$name]:-}; do build_args+=(--build-arg "$arg"); done
  # Build arguments join the hash only when there are any, so other images keep their hashes.
  local hash; hash=$( (cd "$ctx" && find . -type f -print0 | sort -z | xargs -0 sha256sum; echo "base=$base$base_id"
    [ -z "${BUILD_ARGS[$name]:-}" ] || echo "args=${BUILD_ARGS[$name]}") | sha256sum | cut -c1-16)
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
  local id
  id=$(docker build -q --build-arg "BASE=$(base_ref "$base")" "${build_args[@]}" --label "stackvault.build-hash=$hash" \
    "$build_ctx" 2>>"$log") \
    || { tail -20 "$log" >&2; rm -rf "$build_ctx"; sv_die "building $ref failed (log above)." 1; }
  rm -rf "$build_ctx"
  if [ -f "$ctx/env-probe" ]; then
    local var cmd val envs=""
    while read -r var cmd; do
      case "$var" in ''|'#'*) continue ;; esac
      val=$(docker run --rm --entrypoint sh "$id" -c "$cmd" 2>>"$log") && [ -n "$val" ] \
        || { tail -5 "$log" >&2; sv_die "env-probe $var for $ref failed (log above)." 1; }
      envs+="ENV $var=\"$val\""$'\n'
    done <"$ctx/env-probe"
    id=$(printf 'FROM %s\n%s' "$id" "$envs" | docker build -q - 2>>"$log") \
      || { tail -5 "$log" >&2; sv_die "adding the probed environment to $ref failed (log above)." 1; }
  fi
  docker tag "$id" "$ref"
  sv_say "built $ref in $((SECONDS - started)) s."
}

# Builds run in parallel (bases first, sequentially): downloads overlap with unpacking. Images
# built FROM another of ours wait for a second batch (their base is built or checked first).
first=() second=()
for n in "${names[@]}"; do
  [ -n "${TAGS[$n]:-}" ] || sv_die "unknown image '$n' (have: ${ALL[*]})." 2
  if is_image_base "${BASES[$n]}"; then
    second+=("$n")
    [[ " ${names[*]} " == *" ${BASES[$n]} "* ]] || first+=("${BASES[$n]}")
  else
    first+=("$n")
  fi
done
for n in "${first[@]}"; do ensure_base "${BASES[$n]}"; done
build_batch() {
  local n p pids=() rc=0
  for n in "$@"; do build_one "$n" & pids+=($!); done
  for p in "${pids[@]}"; do wait "$p" || rc=1; done
  return $rc
}
build_batch "${first[@]}" && build_batch "${second[@]}"
