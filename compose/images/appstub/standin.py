#!/usr/bin/python3
"""Application stand-in: writes files, SQLite rows and (optionally) creates a PostgreSQL
database the way the real app would, then keeps writing until SIGTERM. See the Dockerfile."""
import os
import signal
import sqlite3
import sys
import time

stopping = False


def stop(_sig, _frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, stop)
signal.signal(signal.SIGINT, stop)


def env_list(name):
    return [p for p in os.environ.get(name, '').split(',') if p.strip()]


def log(msg):
    print(f'app stand-in: {msg}', flush=True)


def create_database():
    import psycopg2
    from psycopg2 import sql
    name = os.environ['DB_DATABASE']
    args = dict(host=os.environ.get('DB_HOST', 'localhost'), port=int(os.environ.get('DB_PORT', '5432')),
                user=os.environ.get('DB_USERNAME', 'postgres'), password=os.environ.get('DB_PASSWORD', ''),
                dbname='postgres', connect_timeout=3)
    deadline = time.time() + 120
    while True:
        try:
            conn = psycopg2.connect(**args)
            break
        except psycopg2.OperationalError as err:
            if time.time() > deadline or stopping:
                raise
            log(f'waiting for the database server ({str(err).strip()})')
            time.sleep(1)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,))
        if cur.fetchone() is None:
            cur.execute(sql.SQL('CREATE DATABASE {}').format(sql.Identifier(name)))
            log(f'created database {name}')
    conn.close()
    conn = psycopg2.connect(**{**args, 'dbname': name})
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute('CREATE TABLE IF NOT EXISTS standin_plugins(id serial PRIMARY KEY, name text NOT NULL, installed_at timestamptz DEFAULT now())')
        cur.execute("INSERT INTO standin_plugins(name) SELECT 'langgenius/openai' WHERE NOT EXISTS (SELECT 1 FROM standin_plugins)")
    conn.close()


def open_sqlite(path):
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    db = sqlite3.connect(path, timeout=5, isolation_level=None)
    db.execute(f"PRAGMA journal_mode={os.environ.get('STANDIN_SQLITE_JOURNAL', 'delete')}")
    db.execute('CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY, at TEXT NOT NULL, payload BLOB NOT NULL)')
    return db


def write_file(directory, n):
    sub = os.path.join(directory, f'{n // 100:04d}')
    os.makedirs(sub, exist_ok=True)
    with open(os.path.join(sub, f'file-{n:06d}.bin'), 'wb') as f:
        f.write(os.urandom(4096))


def main():
    # 0 (the default): write the first files and rows, then stay idle, so a test can compare a
    # restore with what was there; a positive interval keeps writing like a busy app.
    interval = float(os.environ.get('STANDIN_INTERVAL', '0'))
    # Restarted (a restore, a backup that stopped it): the container's own /tmp remembers the
    # first start, and an idle stand-in writes nothing new, so what was restored stays as it is.
    restarted = os.path.exists('/tmp/standin.ready')
    if os.environ.get('STANDIN_CREATE_DB') == 'true':
        create_database()
    for path in env_list('STANDIN_TOUCH'):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, 'a').close()
    dirs = env_list('STANDIN_FILES')
    counters = {}
    first = not (restarted and interval <= 0)
    for d in dirs:
        os.makedirs(d, exist_ok=True)
        counters[d] = sum(len(fs) for _, _, fs in os.walk(d))
        for _ in range(3 if first else 0):
            write_file(d, counters[d])
            counters[d] += 1
    dbs = [open_sqlite(p) for p in env_list('STANDIN_SQLITE')] if first else []
    open('/tmp/standin.ready', 'w').close()
    log('ready')
    for db in dbs:
        db.execute("INSERT INTO events(at, payload) VALUES (datetime('now'), randomblob(64))")
    while not stopping and interval <= 0:
        time.sleep(0.2)
    while not stopping:
        for db in dbs:
            db.execute("INSERT INTO events(at, payload) VALUES (datetime('now'), randomblob(64))")
        for d in dirs:
            write_file(d, counters[d])
            counters[d] += 1
        deadline = time.time() + interval
        while not stopping and time.time() < deadline:
            time.sleep(0.1)
    for db in dbs:
        db.close()
    log('stopped')
    return 0


if __name__ == '__main__':
    sys.exit(main())
