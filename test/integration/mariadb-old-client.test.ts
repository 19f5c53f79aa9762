import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { StartedTestContainer } from 'testcontainers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { RESTORE_SESSION_MODE, SANDBOX_LINE } from '../../src/drivers/mariadb.js';
import { tempDir } from '../support/artifacts.js';
import { bot } from '../support/cli.js';
import { newProjectName } from '../support/containers.js';
import { IMAGES } from '../support/images.js';
import { ALL_BYTES, bigRowRoundTrip, COMPOUND_BODIES, COMPOUND_BODIES_RAN, content, runCompoundBodies, sql, startMariadb } from '../support/mariadb.js';
import { rawArtifact, replaceArtifact } from '../support/tamper.js';

const ROOT_PASSWORD = 'maria105-Root-Secret-4242';
const PWNED = '/tmp/stackvault-gbk';
/** The first line of every mariadb-dump since 10.5.25, as it writes it: the sandbox command, then a space (mariadb.test.ts checks 11.8's). */
const DUMPED_SANDBOX_LINE = `${SANDBOX_LINE} \n`;
const restorePoints = async (dir: string) => (await readdir(dir)).filter((n) => n.startsWith('restore-point'));

/**
 * Text in several character sets (4-byte UTF-8; latin1 with every byte value; GBK and SJIS
 * characters whose second byte is 0x5C, a backslash), BLOBs with every byte value, and the
 * objects a 10.5 mariadb-dump writes its own way: events (between DELIMITER ;; lines, each of
 * its SET lines ending in ;;), some defined under ANSI_QUOTES or NO_BACKSLASH_ESCAPES, with a
 * procedure, a function, triggers, a view and a user.
 */
const SEED = `
CREATE TABLE app.texts (id INT PRIMARY KEY, body VARCHAR(300), l1 VARCHAR(300) CHARACTER SET latin1, gbk VARCHAR(20) CHARACTER SET gbk, sjis VARCHAR(20) CHARACTER SET sjis, u3 VARCHAR(40) CHARACTER SET utf8)
  DEFAULT CHARSET=utf8mb4 COLLATE utf8mb4_unicode_ci;
INSERT INTO app.texts VALUES
  (1, '中文テキスト naïve café ☕ Straße 🎉😀𝄞 👩‍👩‍👧 עברית ''quoted'' \\\\back\\\\ "dq" ;; -- # /* */', 'Müller Øster façade ½ ÿ', '乗俓僜', '予兔十', 'Ωmega ≈ √ ∫'),
  (2, CONCAT('tab\\there', CHAR(10), 'newline', CHAR(13), 'cr', CHAR(0), 'nul', CHAR(26), 'ctrl-z'), CONVERT(UNHEX('${ALL_BYTES}') USING latin1), '', '', NULL),
  (3, '', NULL, NULL, NULL, '');
CREATE TABLE app.blobs (id INT PRIMARY KEY, b LONGBLOB, v VARBINARY(256));
INSERT INTO app.blobs SELECT seq, UNHEX(REPEAT(LPAD(HEX(seq), 2, '0'), 3)), UNHEX(LPAD(HEX(seq), 2, '0')) FROM seq_0_to_255;
INSERT INTO app.blobs VALUES (1000, UNHEX(REPEAT('${ALL_BYTES}', 1000)), UNHEX('${ALL_BYTES}')), (1001, '', NULL);
CREATE DATABASE legacy CHARACTER SET latin1 COLLATE latin1_swedish_ci;
CREATE TABLE legacy.names (id INT PRIMARY KEY, n VARCHAR(300)) CHARACTER SET latin1;
INSERT INTO legacy.names VALUES (1, 'Müller'), (2, 'Øster'), (3, 'façade ½ ÿ'), (4, CONVERT(UNHEX('${ALL_BYTES}') USING latin1));
CREATE TABLE app.log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40));
CREATE TABLE app.modes (a VARCHAR(20));
DELIMITER ;;
CREATE TRIGGER app.texts_ai AFTER INSERT ON app.texts FOR EACH ROW BEGIN INSERT INTO app.log (what) VALUES (CONCAT('insert ', NEW.id)); END;;
CREATE PROCEDURE app.bump(IN n INT) BEGIN DECLARE i INT DEFAULT 0; WHILE i < n DO INSERT INTO app.log (what) VALUES ('bump;'); SET i = i + 1; END WHILE; END;;
CREATE FUNCTION app.shout(s VARCHAR(50)) RETURNS VARCHAR(60) DETERMINISTIC RETURN CONCAT(UPPER(s), '!');;
CREATE EVENT app.nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' COMMENT 'ü;' DO BEGIN DELETE FROM app.log WHERE id < 0; INSERT INTO app.log (what) VALUES ('event ✓'); END;;
DELIMITER ;
CREATE EVENT app.once ON SCHEDULE AT '2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE DO DELETE FROM app.log WHERE what = 'x';
CREATE VIEW app.v_texts AS SELECT id, CHAR_LENGTH(body) AS len, app.shout(LEFT(body, 5)) AS loud FROM app.texts;
SET sql_mode = 'ANSI';
CREATE TRIGGER app.ansi_t BEFORE INSERT ON app.modes FOR EACH ROW SET NEW.a = CONCAT('a', NEW.a);
CREATE EVENT app.ansi_ev ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01' DISABLE DO INSERT INTO "app"."modes" VALUES ('e"v');
SET sql_mode = 'NO_BACKSLASH_ESCAPES';
CREATE PROCEDURE app.nbe() SELECT 'a\\b', 'it''s';
CREATE EVENT app.nbe_ev ON SCHEDULE EVERY 1 HOUR STARTS '2030-01-01' DISABLE DO INSERT INTO app.modes VALUES ('x\\');
SET sql_mode = DEFAULT;
CREATE USER 'reader'@'%' IDENTIFIED BY 'reader-Secret-1';
GRANT SELECT ON app.* TO 'reader'@'%';
`;

/**
 * bullseye's MariaDB 10.5.23 dumps and replays with its own 10.5 programs: its client predates
 * the sandbox command (\-, 10.5.25), so a dump's sandbox line stops it, and its mariadb-dump
 * writes events between DELIMITER ;; lines. Each hostile input is first run through this very
 * client by hand, with the replay's own flags, to show what it does there.
 */
describe('MariaDB 10.5 (its own mariadb-dump and client, no sandbox command)', () => {
  const project = newProjectName('maria105');
  let db: StartedTestContainer;
  let seeded: Record<string, string>;

  /** A backup of the project now: its directory, id and raw dump. */
  const backup = async (tag: string) => {
    const dir = await tempDir(tag);
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir]);
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    return { dir, id: m.id, raw: await rawArtifact(join(dir, m.id), m.services.find((s) => s.name === 'db')!.artifact!) };
  };

  /** Runs `lines` through the container's client as the replay runs it (same flags, same session mode). */
  const byHand = async (lines: Buffer) => {
    await db.copyContentToContainer([{ content: lines, target: '/tmp/by-hand.sql' }]);
    return db.exec(['sh', '-c', `mariadb -uroot app --binary-mode --default-character-set=utf8mb4 "--init-command=${RESTORE_SESSION_MODE}" < /tmp/by-hand.sql`]);
  };

  /** Changes to undo: rows, a database, an event, a routine, a user; a database made since. */
  const mutate = () =>
    sql(
      db,
      `UPDATE app.texts SET body = 'changed' WHERE id = 1; DELETE FROM app.blobs WHERE id > 100; DROP DATABASE legacy; DROP EVENT app.nbe_ev;
       DROP PROCEDURE app.bump; DROP USER 'reader'@'%'; CREATE DATABASE newer; CREATE TABLE newer.t (x INT);
       DROP TRIGGER app.cb_case; DROP PROCEDURE app.cb_for; DROP FUNCTION app.cb_if_f; DROP EVENT app.cb_repeat_e;`,
    );

  beforeAll(async () => {
    db = await startMariadb(IMAGES.mariadb105, project, { MARIADB_ROOT_PASSWORD: ROOT_PASSWORD, MARIADB_DATABASE: 'app' });
    await sql(db, SEED + COMPOUND_BODIES, 'app');
    expect(await runCompoundBodies(db)).toBe(COMPOUND_BODIES_RAN);
    seeded = await content(db);
  });
  afterAll(async () => {
    await db?.stop();
  });

  it("round trip of 10.5's own dump: exact by content read independently, and the routines, triggers and view still work", async () => {
    expect((await db.exec(['mariadb', '--version'])).output).toContain('10.5.23-MariaDB');
    // What this test is about: the 10.5 data really is there, read back by the server.
    expect(await sql(db, 'SELECT HEX(body), HEX(gbk), HEX(sjis) FROM app.texts WHERE id = 1')).toMatch(/F09F8E89.*\t815C825C835C\t975C995C8F5C$/);
    expect(await sql(db, 'SELECT HEX(l1) FROM app.texts WHERE id = 2')).toBe(ALL_BYTES.toUpperCase());
    expect(await sql(db, 'SELECT COUNT(DISTINCT v), MIN(HEX(v)), MAX(HEX(v)) FROM app.blobs WHERE id < 256')).toBe('256\t00\tFF');

    const { dir, id, raw } = await backup('maria105');
    const dump = raw.toString('latin1');
    expect(dump.startsWith('-- MariaDB dump 10.19  Distrib 10.5.23-MariaDB')).toBe(true);
    expect(dump).not.toContain(SANDBOX_LINE);
    // 10.5's event definitions: their SET lines end in ;; between DELIMITER ;; lines.
    expect(dump).toMatch(/DELIMITER ;;\n\/\*!50003 SET @saved_cs_client {6}= @@character_set_client \*\/ ;;\n/);
    expect(dump).toMatch(/\/\*!50106 EVENT `nbe_ev` .* \*\/ ;;\n/);
    // 10.5's own dump of bodies without BEGIN (the filter refused them: exit 5).
    expect(dump).toMatch(/FOR EACH ROW IF NEW\.a IS NULL THEN SET NEW\.a = 1; ELSEIF/);
    expect(dump).toMatch(/\nFOR i IN 1\.\.3 DO INSERT INTO app\.cb_log .* END FOR ;;\n/);

    await mutate();
    expect(await content(db)).not.toEqual(seeded);
    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/db.*equal/);
    expect(await content(db)).toEqual(seeded);

    // The restored objects run: the procedure and its trigger, the function in the view, the ANSI trigger.
    await sql(db, "CALL app.bump(2); INSERT INTO app.texts (id, body) VALUES (9, 'x'); INSERT INTO app.modes VALUES ('b')");
    expect(await sql(db, 'SELECT GROUP_CONCAT(what ORDER BY id) FROM app.log')).toBe('bump;,bump;,insert 9');
    expect(await sql(db, 'SELECT loud FROM app.v_texts WHERE id = 1')).toBe('中文テキス!');
    expect(await sql(db, "SELECT a FROM app.modes WHERE a LIKE '%b'")).toBe('ab');
    expect(await sql(db, 'CALL app.nbe()')).toBe("a\\\\b\tit's");
    await sql(db, "DELETE FROM app.log; DELETE FROM app.texts WHERE id = 9; DELETE FROM app.modes WHERE a = 'ab'");
    expect(await runCompoundBodies(db)).toBe(COMPOUND_BODIES_RAN);
    expect(await content(db)).toEqual(seeded);
  });

  it('a dump with the sandbox line (as 10.5.25 and later write it): this client stops at it; the replay leaves it out and restores exactly', async () => {
    const sandboxed = Buffer.from(`${DUMPED_SANDBOX_LINE}SELECT 1;\n`);
    // The replay used to leave out only the line without that space, which no mariadb-dump writes:
    // this client then stopped at it after the databases were dropped.
    const stopped = await byHand(sandboxed);
    expect(stopped.exitCode).not.toBe(0);
    expect(stopped.stderr).toContain("Unknown command '\\-'");

    const { dir, id, raw } = await backup('maria105-sandbox');
    await replaceArtifact(join(dir, id), 'db', Buffer.concat([Buffer.from(DUMPED_SANDBOX_LINE), raw]));
    await mutate();
    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/db.*equal/);
    expect(await content(db)).toEqual(seeded);
  });

  it('a first line that only begins with the sandbox line is refused before anything changes (exit 5), not replayed up to this client stopping at it', async () => {
    const { dir, id, raw } = await backup('maria105-sandbox-more');
    await replaceArtifact(join(dir, id), 'db', Buffer.concat([Buffer.from(`${SANDBOX_LINE} SELECT 1;\n`), raw]));
    await sql(db, "INSERT INTO app.log (what) VALUES ('since the backup')");
    const before = await content(db);
    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(/more after the sandbox line on its line/);
    expect(await restorePoints(dir)).toEqual([]);
    expect(await content(db)).toEqual(before);
  });

  it('a hostile dump this client runs (\\C gbk hides an INTO OUTFILE) is refused before anything changes (exit 5)', async () => {
    // In GBK 0xBF 0x5C is one character, so the string '\xbf\' ends there and the OUTFILE after
    // it runs; read in utf8mb4 it is all one string. This client knows no sandbox, so nothing
    // but stackvault's reading stands between the dump and the file.
    const hostile = Buffer.from(`\\C gbk\nSELECT '\xbf\\'; SELECT 'x' INTO OUTFILE '${PWNED}'; #'\n`, 'latin1');
    await byHand(hostile);
    expect((await db.exec(['test', '-e', PWNED])).exitCode, 'the client ran the hidden statement').toBe(0);
    await db.exec(['rm', '-f', PWNED]);

    const { dir, id, raw } = await backup('maria105-hostile');
    // As a 10.5.25+ dump would be: the sandbox line first, so the replay would leave it out too.
    const at = raw.indexOf('CREATE DATABASE');
    await replaceArtifact(join(dir, id), 'db', Buffer.concat([Buffer.from(DUMPED_SANDBOX_LINE), raw.subarray(0, at), hostile, raw.subarray(at)]));
    await sql(db, "INSERT INTO app.log (what) VALUES ('since the backup')");
    const before = await content(db);
    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir]);
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(/client's charset command/);
    expect((await db.exec(['test', '-e', PWNED])).exitCode).toBe(1);
    expect(await restorePoints(dir)).toEqual([]);
    expect(await content(db)).toEqual(before);
  });

  it('a row over 16 MB (a 20 MiB BLOB of every byte value) restores exactly through this client, into this server and the throwaway that computes the backup side', async () => {
    await bigRowRoundTrip(db, project);
  });
});
