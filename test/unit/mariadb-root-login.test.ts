import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { lockedOut, RootLoginReader } from '../../src/drivers/mariadb.js';
import { chunked } from '../support/chunks.js';

/** mysql_native_password's stored form: `*` and the upper-case hex of SHA1(SHA1(password)). */
const native = (password: string) => `*${createHash('sha1').update(createHash('sha1').update(password).digest()).digest('hex').toUpperCase()}`;

const rootOnly = (password: string) =>
  `{\\"access\\":1099511627775,\\"plugin\\":\\"mysql_native_password\\",\\"authentication_string\\":\\"${native(password)}\\",\\"auth_or\\":[{}],\\"version_id\\":110809}`;
const rootOrSocket = (password: string) =>
  `{\\"access\\":1099511627775,\\"plugin\\":\\"mysql_native_password\\",\\"authentication_string\\":\\"${native(password)}\\",\\"auth_or\\":[{},{\\"plugin\\":\\"unix_socket\\"}]}`;

/** The mysql schema's privilege rows as mariadb-dump 11.8 writes them (one row a line), around other lines. */
const dump11 = (rootPriv: string) => `-- MariaDB dump 10.19-11.8.3-MariaDB
INSERT INTO \`t\` VALUES (1,'('localhost','root','{}')'),(2,'x');
LOCK TABLES \`global_priv\` WRITE;
INSERT INTO \`global_priv\` VALUES
('localhost','mariadb.sys','{\\"access\\":0,\\"plugin\\":\\"mysql_native_password\\",\\"authentication_string\\":\\"\\",\\"account_locked\\":true}'),
('localhost','root','${rootPriv}'),
('%','root','{\\"access\\":1,\\"plugin\\":\\"mysql_native_password\\",\\"authentication_string\\":\\"*00\\"}');
UNLOCK TABLES;
INSERT INTO \`later\` VALUES ('${'v'.repeat(5000)}');
-- Dump completed
`;

/** The same as mariadb-dump 10.5 writes it: every row on the INSERT's own line. */
const dump105 = (rootPriv: string) => `INSERT INTO \`global_priv\` VALUES ('localhost','mariadb.sys','{}'),('localhost','root','${rootPriv}'),('%','app','{}');
-- Dump completed
`;

async function read(text: string, cuts: number[] = []): Promise<{ out: Buffer; priv: Record<string, unknown> | undefined }> {
  const reader = new RootLoginReader();
  const out: Buffer[] = [];
  for await (const c of Readable.from(chunked(Buffer.from(text, 'latin1'), cuts)).pipe(reader)) out.push(c as Buffer);
  return { out: Buffer.concat(out), priv: reader.priv() };
}

describe("the dump's root@localhost, read as it streams past", () => {
  it('is found in 11.8 and 10.5 layouts, at any chunk boundary, and every byte passes unchanged', async () => {
    for (const text of [dump11(rootOnly('s3cret')), dump105(rootOnly('s3cret')), dump11(rootOrSocket('x'))]) {
      const whole = await read(text);
      expect(whole.priv?.plugin).toBe('mysql_native_password');
      await fc.assert(
        fc.asyncProperty(fc.array(fc.nat(), { maxLength: 12 }), async (cuts) => {
          const r = await read(text, cuts);
          expect(r.out.toString('latin1')).toBe(text);
          expect(r.priv).toEqual(whole.priv);
        }),
        { numRuns: 150 },
      );
    }
  });

  it('is not taken from data that only looks like a privilege row, nor from a dump without one', async () => {
    expect((await read("INSERT INTO `t` VALUES ('localhost','root','{\\\"plugin\\\":\\\"x\\\"}');\n")).priv).toBeUndefined();
    expect((await read('-- Dump completed\n')).priv).toBeUndefined();
  });

  it('locks stackvault out only when root logs in by native password hashes of other passwords', async () => {
    const priv = async (p: string) => (await read(dump11(p))).priv;
    expect(lockedOut(await priv(rootOnly('old-one')), 'new-one')).toBe(true);
    expect(lockedOut(await priv(rootOnly('same-one')), 'same-one')).toBe(false);
    expect(lockedOut(await priv(rootOrSocket('old-one')), 'new-one')).toBe(false); // the socket lets root in
    expect(lockedOut({ plugin: 'ed25519', authentication_string: 'abc' }, 'new-one')).toBe(false); // cannot tell: no verdict
    expect(lockedOut({ plugin: 'mysql_native_password', authentication_string: '' }, '')).toBe(false); // no password, none given
    expect(lockedOut({ plugin: 'mysql_native_password', authentication_string: '' }, 'given')).toBe(true);
    expect(lockedOut(undefined, 'any')).toBe(false);
  });
});
