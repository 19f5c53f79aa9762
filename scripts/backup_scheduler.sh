#!/usr/bin/env bash
# Scheduled backups through cron. The same verbs as `./bot.sh scheduler`:
#   scripts/backup_scheduler.sh install daily|weekly|monthly|"CRON EXPR" [--ping URL | --ping-file FILE] [--dir DIR]
#   scripts/backup_scheduler.sh uninstall | status | trigger
# CDPATH= : a relative `cd` must not search CDPATH (it would go elsewhere and print the directory).
exec "$(CDPATH='' cd -- "$(dirname -- "$0")/.." && pwd)/bot.sh" scheduler "$@"
