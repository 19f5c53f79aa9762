#!/bin/sh
# Run by test/support/layouts.ts in the layout's copy before `up`: what a LibreChat user does so
# the api (running as ${UID}:${GID}) can write its bind-mounted directories. Docker would
# otherwise create them owned by root.
set -e
uid=${UID:-$(sed -n 's/^UID=//p' .env)}
gid=${GID:-$(sed -n 's/^GID=//p' .env)}
mkdir -p images uploads logs
chown "$uid:$gid" images uploads logs
