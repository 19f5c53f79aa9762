import { join } from 'node:path';
import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';
import { expect } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from './artifacts.js';
import { bot } from './cli.js';
import { rawArtifact } from './tamper.js';

/**
 * Starts a MariaDB container of one of the local images as the service `db` of `project`,
 * its server with max_allowed_packet 64M (a raised limit, as stacks with large rows set it).
 */
export function startMariadb(image: string, project: string, env: Record<string, string>): Promise<StartedTestContainer> {
  return new GenericContainer(image)
    .withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'db' })
    .withEnvironment(env)
    .withCommand(['mariadbd', '--max-allowed-packet=64M'])
    .withWaitStrategy(Wait.forHealthCheck())
    .start();
}

/** Every byte value 00…FF, as hex. */
export const ALL_BYTES = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0')).join('');

/**
 * Triggers, routines and events whose bodies are compound statements without BEGIN (IF, CASE,
 * a labelled LOOP, WHILE, REPEAT, FOR over a range), with ELSEIF, a handler whose statement is
 * IF, characteristics, CASE expressions, IF(), REPEAT(), IF EXISTS and `;` in strings and
 * comments: as a user writes them, for the server's own mariadb-dump to write back.
 */
export const COMPOUND_BODIES = `
CREATE TABLE app.cb (id INT AUTO_INCREMENT PRIMARY KEY, a INT, b VARCHAR(40));
CREATE TABLE app.cb_log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(80));
DELIMITER ;;
CREATE TRIGGER app.cb_if BEFORE INSERT ON app.cb FOR EACH ROW IF NEW.a IS NULL THEN SET NEW.a = 1; ELSEIF NEW.a < 0 THEN SET NEW.a = -NEW.a; ELSE SET NEW.b = CONCAT(IFNULL(NEW.b, ''), ';'); END IF;;
CREATE TRIGGER app.cb_case BEFORE UPDATE ON app.cb FOR EACH ROW CASE WHEN NEW.a > 100 THEN SET NEW.b = 'big;'; WHEN NEW.a > 10 THEN SET NEW.b = CASE WHEN NEW.a > 50 THEN 'mid' ELSE 'small' END; ELSE BEGIN END; END CASE;;
CREATE TRIGGER app.cb_loop AFTER INSERT ON app.cb FOR EACH ROW lbl: LOOP INSERT INTO app.cb_log (what) VALUES (CONCAT('insert ', NEW.id)); LEAVE lbl; END LOOP lbl;;
CREATE PROCEDURE app.cb_while(IN n INT) WHILE n > 0 DO INSERT INTO app.cb_log (what) VALUES ('while;'); SET n = n - 1; END WHILE;;
CREATE PROCEDURE app.cb_repeat(INOUT n INT) REPEAT SET n = n - 1; INSERT INTO app.cb_log (what) VALUES (REPEAT('r', 2)); UNTIL n <= 0 END REPEAT;;
CREATE PROCEDURE app.cb_for() FOR i IN 1..3 DO INSERT INTO app.cb_log (what) VALUES (CONCAT('for ', i, IF(i > 1, ';', ''))); END FOR;;
CREATE PROCEDURE app.cb_case(IN v INT) LANGUAGE SQL NOT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY INVOKER COMMENT 'a; b END IF'
  CASE v WHEN 1 THEN INSERT INTO app.cb_log (what) VALUES ('one'); WHEN 2 THEN BEGIN INSERT INTO app.cb_log (what) VALUES ('two'); END; ELSE IF v > 2 THEN INSERT INTO app.cb_log (what) VALUES ('many'); END IF; END CASE;;
CREATE PROCEDURE app.cb_handler() BEGIN DECLARE done INT DEFAULT 0; DECLARE CONTINUE HANDLER FOR SQLSTATE '02000', SQLEXCEPTION IF done = 0 THEN SET done = 1; END IF;
  outer_l: WHILE done < 3 DO SET done = done + 1; IF EXISTS (SELECT 1 FROM app.cb_log WHERE what = 'x;') THEN LEAVE outer_l; END IF; END WHILE outer_l; END;;
CREATE FUNCTION app.cb_loop_f(n INT) RETURNS INT DETERMINISTIC NO SQL l: LOOP IF n > 10 THEN RETURN n; END IF; SET n = n * 2; END LOOP l;;
CREATE FUNCTION app.cb_if_f(s VARCHAR(20)) RETURNS VARCHAR(40) CHARSET utf8mb4 COLLATE utf8mb4_bin DETERMINISTIC
  IF s IS NULL THEN RETURN 'null;'; ELSE RETURN CONCAT(s, CASE WHEN LENGTH(s) > 3 THEN '!' ELSE '?' END); END IF;;
CREATE EVENT app.cb_event ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' DISABLE COMMENT 'x; END IF'
  DO IF (SELECT COUNT(*) FROM app.cb_log) > 1000 THEN DELETE FROM app.cb_log; ELSE INSERT INTO app.cb_log (what) VALUES ('event;'); END IF;;
CREATE EVENT app.cb_repeat_e ON SCHEDULE AT '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO lb: REPEAT DELETE FROM app.cb_log WHERE id < 0; UNTIL 1 END REPEAT lb;;
DELIMITER ;
`;

/** Runs the compound bodies (as a restored copy must run them) and says what they did; leaves the tables as they were. */
export async function runCompoundBodies(c: StartedTestContainer): Promise<string> {
  await sql(
    c,
    "CALL app.cb_while(2); CALL app.cb_for(); SET @n = 1; CALL app.cb_repeat(@n); CALL app.cb_case(2); CALL app.cb_handler(); INSERT INTO app.cb (a, b) VALUES (NULL, 'x'), (-5, NULL), (7, 'y'); UPDATE app.cb SET a = a + 60 WHERE a = 7",
  );
  const done = await sql(
    c,
    "SELECT CONCAT_WS(' | ', (SELECT GROUP_CONCAT(what ORDER BY id) FROM app.cb_log), (SELECT GROUP_CONCAT(CONCAT_WS(':', a, b) ORDER BY id) FROM app.cb), app.cb_loop_f(3), app.cb_if_f('abcd'), app.cb_if_f(NULL))",
  );
  await sql(c, 'DELETE FROM app.cb_log; DELETE FROM app.cb; ALTER TABLE app.cb_log AUTO_INCREMENT = 1; ALTER TABLE app.cb AUTO_INCREMENT = 1');
  return done;
}

/** What runCompoundBodies reads when every body did what it says. */
export const COMPOUND_BODIES_RAN = 'while;,while;,for 1,for 2;,for 3;,rr,two,insert 1,insert 2,insert 3 | 1:x,5,67:mid | 12 | abcd! | null;';

/**
 * A BLOB row of 20 MiB holding every byte value (81,920 times 00…FF), which mariadb-dump writes
 * as one INSERT of about 40 MB (hex), over the 16 MB a server allows by default (a throwaway's):
 * backed up, changed, restored through stackvault, and equal again by content and MD5 read in
 * a separate session, the server's own max_allowed_packet (64M, as startMariadb sets it) back.
 */
export async function bigRowRoundTrip(c: StartedTestContainer, project: string): Promise<void> {
  await sql(c, `CREATE TABLE app.big (id INT PRIMARY KEY, b LONGBLOB); INSERT INTO app.big VALUES (1, REPEAT(UNHEX('${ALL_BYTES}'), 81920))`);
  const row = `SELECT LENGTH(b), MD5(b), HEX(SUBSTRING(b, 1, 256)) = '${ALL_BYTES.toUpperCase()}' FROM app.big`;
  const want = await sql(c, row);
  expect(want).toMatch(/^20971520\t\w{32}\t1$/);
  const dir = await tempDir('mariadb-big');
  const made = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 300_000 });
  expect(made.exitCode, String(made.stderr)).toBe(0);
  const m = JSON.parse(String(made.stdout)) as Manifest;
  const raw = await rawArtifact(join(dir, m.id), m.services.find((s) => s.name === 'db')!.artifact!);
  expect(
    raw
      .toString('latin1')
      .split('\n')
      .reduce((n, line) => Math.max(n, line.length), 0),
  ).toBeGreaterThan(40_000_000);
  const before = await content(c);
  await sql(c, "UPDATE app.big SET b = 'changed'");
  // Sampled in a loop inside the container while the restore runs: the server's own
  // max_allowed_packet is back while the replay's 40 MB INSERT runs (that session keeps the
  // raised one), so a stackvault killed mid-replay leaves the server's setting as it was.
  await c.exec(['rm', '-f', '/tmp/stop-sampling']);
  const sampling = c.exec([
    'sh',
    '-c',
    `end=$(($(date +%s) + 280)); while [ ! -e /tmp/stop-sampling ] && [ $(date +%s) -lt $end ]; do mariadb -uroot -N -B -e "SELECT @@global.max_allowed_packet, COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE 'INSERT INTO _big_ VALUES%'"; done`,
  ]);
  const r = await bot(['backup', 'restore', m.id, '--yes', '--dir', dir], { timeout: 300_000 });
  await c.exec(['touch', '/tmp/stop-sampling']);
  const duringInsert = (await sampling).stdout
    .split('\n')
    .map((line) => line.split('\t'))
    .filter(([, inserting]) => Number(inserting) > 0)
    .map(([setting]) => setting);
  expect(duringInsert.length, "no sample saw the replay's INSERT").toBeGreaterThan(0);
  expect(new Set(duringInsert)).toEqual(new Set([String(64 * 1024 * 1024)]));
  expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
  expect(String(r.stdout)).toMatch(/db.*equal/);
  expect(await sql(c, row)).toBe(want);
  expect(await content(c)).toEqual(before);
  expect(await sql(c, 'SELECT @@global.max_allowed_packet')).toBe(String(64 * 1024 * 1024));
  await sql(c, 'DROP TABLE app.big');
}

/** Runs SQL with the server's own client as root over the socket; returns its tab-separated output. */
export async function sql(c: StartedTestContainer, query: string, db = ''): Promise<string> {
  const r = await c.exec(['mariadb', '-uroot', '-N', '-B', '--default-character-set=utf8mb4', ...(db ? [db] : []), '-e', query]);
  if (r.exitCode !== 0) throw new Error(`${query.slice(0, 80)}: ${r.stderr || r.output}`);
  return r.stdout.trim();
}

/**
 * The content as a test reads it, in its own client session with its own queries (not the
 * driver's CHECKSUM TABLE): per table every row's HEX() of every column in row order (the
 * stored bytes, in each column's own character set), databases with their character sets,
 * users with their authentication and grants, and routines, triggers, events and views with
 * their definitions and the settings they run under.
 */
export async function content(c: StartedTestContainer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const system = "('mysql','information_schema','performance_schema','sys')";
  out.databases = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME) ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ${system}`,
  );
  const tables = (await sql(c, `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ${system} ORDER BY 1`))
    .split('\n')
    .filter(Boolean);
  for (const t of tables) {
    const [db, name] = t.split('.') as [string, string];
    const cols = (await sql(c, `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='${db}' AND TABLE_NAME='${name}' ORDER BY ORDINAL_POSITION`)).split('\n');
    const row = `CONCAT_WS('|', ${cols.map((col) => `IFNULL(HEX(\`${col}\`), 'NULL')`).join(', ')})`;
    out[`table ${t}`] = await sql(
      c,
      `SET SESSION group_concat_max_len = 1073741824; SELECT COUNT(*), MD5(IFNULL(GROUP_CONCAT(${row} ORDER BY ${row} SEPARATOR '\\n'), '')) FROM \`${db}\`.\`${name}\``,
    );
    out[`create ${t}`] = (await sql(c, `SHOW CREATE TABLE \`${db}\`.\`${name}\``)).replace(/ AUTO_INCREMENT=\d+/, '');
  }
  out.users = await sql(c, "SELECT GROUP_CONCAT(CONCAT(User, '@', Host, ' ', MD5(Priv)) ORDER BY User, Host) FROM mysql.global_priv");
  out.grants = await sql(c, "SELECT GROUP_CONCAT(CONCAT_WS(' ', User, Host, Db, Select_priv, Insert_priv) ORDER BY User, Db) FROM mysql.db");
  out.routines = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, MD5(ROUTINE_DEFINITION), SQL_MODE, DEFINER) ORDER BY 1) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ${system}`,
  );
  out.triggers = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', TRIGGER_SCHEMA, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, MD5(ACTION_STATEMENT), SQL_MODE) ORDER BY 1) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ${system}`,
  );
  out.events = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', EVENT_SCHEMA, EVENT_NAME, MD5(EVENT_DEFINITION), EVENT_TYPE, IFNULL(EXECUTE_AT, '-'), IFNULL(INTERVAL_VALUE, '-'), IFNULL(INTERVAL_FIELD, '-'), IFNULL(STARTS, '-'), STATUS, ON_COMPLETION, SQL_MODE, TIME_ZONE) ORDER BY 1) FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ${system}`,
  );
  out.views = await sql(c, `SELECT GROUP_CONCAT(CONCAT_WS(' ', TABLE_SCHEMA, TABLE_NAME, MD5(VIEW_DEFINITION)) ORDER BY 1) FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ${system}`);
  return out;
}
