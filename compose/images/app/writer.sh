#!/bin/bash
# Writes a row to app.db every WRITE_INTERVAL seconds (default 0.2) through one long-lived
# connection, like an app would, so a live -wal file exists while backups are taken.
set -euo pipefail
cd /app/data
sqlite3 notes.db "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS notes(id INTEGER PRIMARY KEY, body TEXT NOT NULL);" >/dev/null
sqlite3 app.db "PRAGMA journal_mode=WAL; CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, at TEXT NOT NULL, payload TEXT NOT NULL);" >/dev/null
touch .ready
trap 'exit 0' TERM INT
{
  echo "PRAGMA busy_timeout=5000;"
  while :; do
    echo "INSERT INTO events(at, payload) VALUES (datetime('now'), hex(randomblob(64)));"
    sleep "${WRITE_INTERVAL:-0.2}"
  done
} | sqlite3 app.db >/dev/null &
wait $!
