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
import { bigRowRoundTrip, COMPOUND_BODIES, COMPOUND_BODIES_RAN, content, runCompoundBodies, sql, startMariadb } from '../support/mariadb.js';
import { rawArtifact, replaceArtifact, rewriteArtifact } from '../support/tamper.js';

const ROOT_PASSWORD = 'maria-Root-Secret-4242';
const APP_PASSWORD = 'maria-App-Secret-4242';

/** Text and bytes nobody picked to be easy: every byte value, 4-byte UTF-8, latin1, JSON, decimals, times, NULLs. */
const SEED = `
CREATE TABLE app.messages (id INT AUTO_INCREMENT PRIMARY KEY, body MEDIUMTEXT, raw VARBINARY(300), doc JSON, price DECIMAL(20,6), at DATETIME(6), note VARCHAR(50) NULL) DEFAULT CHARSET=utf8mb4;
INSERT INTO app.messages (body, raw, doc, price, at, note) VALUES
  ('中文テキスト naïve café ☕ Straße 🎉 ''quoted'' \\\\back', UNHEX(CONCAT_WS('', ${Array.from({ length: 16 }, (_, i) => `'${Array.from({ length: 16 }, (_, j) => (i * 16 + j).toString(16).padStart(2, '0')).join('')}'`).join(', ')})), '{"a": [1, 2.5, "ü"], "b": null}', 123456789.123456, '2026-12-04 10:11:12.345678', NULL),
  (REPEAT('x', 70000), '', '[]', -0.000001, '1970-01-01 00:00:01.000000', 'tab\\tnewline\\nnull\\0end');
INSERT INTO app.messages (body, raw, doc, price, at) SELECT CONCAT('row ', seq, ' ✓'), UNHEX(MD5(seq)), JSON_OBJECT('n', seq), seq / 7, '2026-01-01' + INTERVAL seq SECOND FROM seq_1_to_5000;
CREATE DATABASE legacy CHARACTER SET latin1 COLLATE latin1_swedish_ci;
CREATE TABLE legacy.names (n VARCHAR(40)) CHARACTER SET latin1;
INSERT INTO legacy.names VALUES ('Müller'), ('Øster'), ('façade'), ('');
CREATE VIEW app.expensive AS SELECT id, price FROM app.messages WHERE price > 100;
CREATE TABLE app.audit (id INT, what VARCHAR(20));
CREATE TRIGGER app.log_insert AFTER INSERT ON app.messages FOR EACH ROW INSERT INTO app.audit VALUES (NEW.id, 'insert');
CREATE PROCEDURE app.total(OUT t DECIMAL(30,6)) SELECT SUM(price) INTO t FROM app.messages;
CREATE EVENT app.nightly ON SCHEDULE EVERY 1 DAY STARTS '2030-01-01' DO DELETE FROM app.audit WHERE id < 0;
CREATE TABLE app.modes (a VARCHAR(10));
SET sql_mode = 'ANSI';
CREATE TRIGGER app.ansi_t BEFORE INSERT ON app.modes FOR EACH ROW SET NEW.a = 'ansi';
SET sql_mode = 'NO_BACKSLASH_ESCAPES';
CREATE PROCEDURE app.nbe() SELECT 'a\\b', 'it''s';
SET sql_mode = DEFAULT;
INSERT INTO app.modes VALUES ('x');
CREATE USER 'reader'@'%' IDENTIFIED BY 'reader-Secret-1';
GRANT SELECT ON app.* TO 'reader'@'%';
`;

describe('MariaDB (a real mariadb-server 11.8)', () => {
  const project = newProjectName('mariadb');
  let db: StartedTestContainer;
  let dir: string;
  let seeded: Record<string, string>;
  let id: string;

  beforeAll(async () => {
    db = await startMariadb(IMAGES.mariadb, project, { MARIADB_ROOT_PASSWORD: ROOT_PASSWORD, MARIADB_DATABASE: 'app', MARIADB_USER: 'app', MARIADB_PASSWORD: APP_PASSWORD });
    await sql(db, SEED + COMPOUND_BODIES, 'app');
    expect(await runCompoundBodies(db)).toBe(COMPOUND_BODIES_RAN);
    seeded = await content(db);
    dir = await tempDir('mariadb');
  });
  afterAll(async () => {
    await db?.stop();
  });

  it('is found by what it is, backed up whole, and no password reaches the manifest', async () => {
    const r = await bot(['backup', 'create', '--json', '--project', project, '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stderr)).toBe(0);
    const m = JSON.parse(String(r.stdout)) as Manifest;
    id = m.id;
    const entry = m.services.find((s) => s.name === 'db')!;
    expect(entry).toMatchObject({ driver: 'mariadb', status: 'ok', format: 'sql' });
    expect(entry.details?.databases).toEqual(['app', 'legacy']);
    const text = JSON.stringify(m);
    for (const secret of [ROOT_PASSWORD, APP_PASSWORD]) expect(text).not.toContain(secret);
    // The sandbox line as 11.8 writes it, with a space before its newline (a replay through a client without the command leaves it out).
    const raw = await rawArtifact(join(dir, id), entry.artifact!);
    expect(raw.subarray(0, SANDBOX_LINE.length + 2).toString()).toBe(`${SANDBOX_LINE} \n`);
    // 11.8's own dump of bodies without BEGIN, between DELIMITER ;; lines (the filter refused them: exit 5).
    expect(raw.toString()).toMatch(/FOR EACH ROW IF NEW\.a IS NULL THEN SET NEW\.a = 1; ELSEIF/);
    expect(raw.toString()).toMatch(/\nWHILE n > 0 DO INSERT INTO app\.cb_log \(what\) VALUES \('while;'\); SET n = n - 1; END WHILE\n;;\n/);
  });

  it('restores exactly: rows, bytes, schema, routines, users; what came since is gone; the check says equal', async () => {
    await sql(
      db,
      `UPDATE app.messages SET body = 'changed' WHERE id = 1; DELETE FROM app.messages WHERE id > 4000; DROP TABLE legacy.names;
       CREATE DATABASE newer; CREATE TABLE newer.t (x INT); CREATE TABLE app.extra (y INT);
       CREATE USER 'intruder'@'%' IDENTIFIED BY 'x'; DROP PROCEDURE app.total; DROP USER 'reader'@'%';
       DROP TRIGGER app.cb_if; DROP PROCEDURE app.cb_while; DROP FUNCTION app.cb_loop_f; DROP EVENT app.cb_event;`,
    );
    expect(await content(db)).not.toEqual(seeded);
    const r = await bot(['backup', 'restore', id, '--yes', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
    expect(String(r.stdout)).toMatch(/db.*equal/);
    expect(await content(db)).toEqual(seeded);
    // The compound bodies came back whole and run as they did.
    expect(await runCompoundBodies(db)).toBe(COMPOUND_BODIES_RAN);
    expect(await content(db)).toEqual(seeded);
    // The app's user still logs in with its password, over TCP as the app would.
    const login = await db.exec(['mariadb', '-h127.0.0.1', '-uapp', '-N', '-e', 'SELECT COUNT(*) FROM app.messages'], { env: { MYSQL_PWD: APP_PASSWORD } });
    expect(login.stdout.trim()).toBe('5002');
  });

  it('verify --deep loads the dump into a throwaway server and finds the same content', async () => {
    const r = await bot(['backup', 'verify', id, '--deep', '--dir', dir], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(0);
  });

  it.each([
    ['writes a file', "SELECT 'x' INTO OUTFILE '/tmp/stackvault-pwned'", /OUTFILE/],
    ['switches how strings end in a way it cannot follow', "SET sql_mode=CONCAT('NO_BACKSLASH','_ESCAPES')", /sql_mode/],
    ['runs a shell command', '\\! touch /tmp/stackvault-pwned', /client command/],
  ])('a crafted dump that %s is refused before anything changes (exit 5)', async (_what, line, message) => {
    const copy = await tempDir('mariadb-crafted');
    const made = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy], { timeout: 300_000 });
    const crafted = (JSON.parse(String(made.stdout)) as Manifest).id;
    await rewriteArtifact(join(copy, crafted), 'db', (dump) => dump.replace('CREATE DATABASE', `${line};\nCREATE DATABASE`));
    const before = await content(db);
    const r = await bot(['backup', 'restore', crafted, '--yes', '--dir', copy], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(message);
    expect((await db.exec(['test', '-e', '/tmp/stackvault-pwned'])).exitCode).toBe(1);
    expect(await content(db)).toEqual(before);
  });

  it('a bypass the 11.8 client really runs (\\C gbk inside a comment no server runs) is refused before anything changes (exit 5)', async () => {
    // The client runs `\C gbk` inside /*M!999999 …*/, so 0xBF 0x5C is one GBK character and the
    // string `'\xbf\'` ends there: the OUTFILE after it runs. Shown first by hand, with the replay's own flags.
    const hostile = Buffer.from("/*M!999999 \\C gbk ;*/\nSELECT '\xbf\\'; SELECT 'x' INTO OUTFILE '/tmp/stackvault-gbk'; #'\n", 'latin1');
    await db.copyContentToContainer([{ content: hostile, target: '/tmp/hostile.sql' }]);
    await db.exec(['sh', '-c', `mariadb -uroot app --binary-mode --default-character-set=utf8mb4 "--init-command=${RESTORE_SESSION_MODE}" < /tmp/hostile.sql`]);
    expect((await db.exec(['test', '-e', '/tmp/stackvault-gbk'])).exitCode, 'the client ran the hidden statement').toBe(0);
    await db.exec(['rm', '-f', '/tmp/stackvault-gbk', '/tmp/hostile.sql']);

    const copy = await tempDir('mariadb-gbk');
    const made = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy], { timeout: 300_000 });
    expect(made.exitCode, String(made.stderr)).toBe(0);
    const m = JSON.parse(String(made.stdout)) as Manifest;
    const raw = await rawArtifact(join(copy, m.id), m.services.find((s) => s.name === 'db')!.artifact!);
    const at = raw.indexOf('CREATE DATABASE');
    await replaceArtifact(join(copy, m.id), 'db', Buffer.concat([raw.subarray(0, at), hostile, raw.subarray(at)]));
    const before = await content(db);
    const r = await bot(['backup', 'restore', m.id, '--yes', '--dir', copy], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(/executable comment for version 999999/);
    expect((await db.exec(['test', '-e', '/tmp/stackvault-gbk'])).exitCode).toBe(1);
    expect((await readdir(copy)).filter((n) => n.startsWith('restore-point'))).toEqual([]);
    expect(await content(db)).toEqual(before);
  });

  it('a block whose first statement ends before a second one (a column named begin) is refused before anything changes (exit 5); the client really runs the second', async () => {
    // Between DELIMITER ;; lines the client sends one query; the server ends the procedure at the
    // first `;` and runs what follows. The old count took `begin` for a body's BEGIN.
    const hostile = "DELIMITER ;;\nCREATE PROCEDURE app.hidden() SELECT 1 AS begin INTO @b; EXECUTE IMMEDIATE 'SELECT ''x'' INTO OUTFILE ''/tmp/stackvault-block''' ;;\nDELIMITER ;\n";
    await db.copyContentToContainer([{ content: hostile, target: '/tmp/hostile.sql' }]);
    await db.exec(['sh', '-c', `mariadb -uroot app --binary-mode --default-character-set=utf8mb4 "--init-command=${RESTORE_SESSION_MODE}" < /tmp/hostile.sql`]);
    expect((await db.exec(['test', '-e', '/tmp/stackvault-block'])).exitCode, 'the client ran the hidden statement').toBe(0);
    await db.exec(['rm', '-f', '/tmp/stackvault-block', '/tmp/hostile.sql']);
    await sql(db, 'DROP PROCEDURE app.hidden');

    const copy = await tempDir('mariadb-block');
    const made = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy], { timeout: 300_000 });
    const crafted = (JSON.parse(String(made.stdout)) as Manifest).id;
    await rewriteArtifact(join(copy, crafted), 'db', (dump) => dump.replace('CREATE DATABASE', `${hostile}CREATE DATABASE`));
    const before = await content(db);
    const r = await bot(['backup', 'restore', crafted, '--yes', '--dir', copy], { timeout: 300_000 });
    expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
    expect(String(r.stderr)).toMatch(/outside a stored program's body/);
    expect((await db.exec(['test', '-e', '/tmp/stackvault-block'])).exitCode).toBe(1);
    expect(await content(db)).toEqual(before);
  });

  it('a stored program made under sql_mode ORACLE (which the replay filter does not follow) is known when the backup is made: ⚠️, partial (exit 3), bytes kept; the restore refuses it in the same words, changing nothing', async () => {
    await sql(db, 'SET sql_mode = ORACLE;\nDELIMITER //\nCREATE PROCEDURE app.p_oracle AS BEGIN NULL; END//\nDELIMITER ;', 'app');
    try {
      const copy = await tempDir('mariadb-oracle');
      const made = await bot(['backup', 'create', '--json', '--project', project, '--dir', copy], { timeout: 300_000 });
      expect(made.exitCode, String(made.stderr)).toBe(3);
      const m = JSON.parse(String(made.stdout)) as Manifest;
      expect(m.status).toBe('partial');
      expect(m.services[0]).toMatchObject({ status: 'ok', restoreRefuses: expect.stringMatching(/sql_mode ORACLE/) });
      expect((await rawArtifact(join(copy, m.id), m.services[0]!.artifact!)).includes('p_oracle')).toBe(true);
      const listed = await bot(['backup', 'list', '--dir', copy]);
      expect(String(listed.stdout)).toMatch(/⚠️ db/);
      const before = await content(db);
      const r = await bot(['backup', 'restore', m.id, '--yes', '--dir', copy], { timeout: 300_000 });
      expect(r.exitCode, String(r.stdout) + String(r.stderr)).toBe(5);
      expect(String(r.stderr)).toContain(m.services[0]!.restoreRefuses!);
      expect(await content(db)).toEqual(before);
    } finally {
      await sql(db, 'DROP PROCEDURE app.p_oracle');
    }
  });

  it('a row over 16 MB (a 20 MiB BLOB of every byte value, written as one 40 MB INSERT) restores exactly, also through the throwaway server that computes the backup side', async () => {
    await bigRowRoundTrip(db, project);
  });
});
