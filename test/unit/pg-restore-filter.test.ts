import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PgRestoreFilter } from '../../src/drivers/pg-restore-filter.js';

async function filter(sql: string, user = 'botadmin', force = true, chunk = 7): Promise<{ out: string; roles: string[] }> {
  const f = new PgRestoreFilter(user, force);
  const parts: string[] = [];
  for (let i = 0; i < sql.length; i += chunk) parts.push(sql.slice(i, i + chunk)); // lines split across chunks
  let out = '';
  for await (const c of Readable.from(parts).pipe(f)) out += String(c);
  return { out, roles: [...f.roles].sort() };
}

const DUMP = [
  'SET default_transaction_read_only = off;',
  'DROP DATABASE IF EXISTS "bot";',
  'DROP ROLE IF EXISTS "botadmin";',
  'DROP ROLE IF EXISTS "reporter";',
  'CREATE ROLE "botadmin";',
  'ALTER ROLE "botadmin" WITH SUPERUSER;',
  'CREATE ROLE "reporter";',
  'CREATE ROLE "we""ird";',
  '\\connect template1',
  'CREATE ROLE "botadmin";',
  'COPY public.t (v) FROM stdin;',
  'DROP DATABASE IF EXISTS "x";',
  'CREATE ROLE "botadmin";',
  '\\.',
  'DROP DATABASE "postgres";',
  '',
].join('\n');

describe('PgRestoreFilter', () => {
  it('drops only the connected superuser lines in the roles section and forces database drops', async () => {
    const { out, roles } = await filter(DUMP);
    const lines = out.split('\n');
    expect(lines).not.toContain('DROP ROLE IF EXISTS "botadmin";');
    // the only CREATE ROLE "botadmin" left is the one after \connect (not in the roles section)
    expect(lines.indexOf('CREATE ROLE "botadmin";')).toBeGreaterThan(lines.indexOf('\\connect template1'));
    expect(lines).toContain('DROP ROLE IF EXISTS "reporter";');
    expect(lines).toContain('ALTER ROLE "botadmin" WITH SUPERUSER;');
    expect(lines).toContain('DROP DATABASE IF EXISTS "bot" WITH (FORCE);');
    expect(lines).toContain('DROP DATABASE "postgres" WITH (FORCE);');
    expect(roles).toEqual(['botadmin', 'reporter', 'we"ird']);
  });

  it('passes COPY data and everything after the roles section through untouched', async () => {
    const { out } = await filter(DUMP);
    expect(out).toContain('COPY public.t (v) FROM stdin;\nDROP DATABASE IF EXISTS "x";\nCREATE ROLE "botadmin";\n\\.');
    expect(out).toContain('\\connect template1\nCREATE ROLE "botadmin";');
  });

  it('without FORCE support leaves DROP DATABASE as it is', async () => {
    const { out } = await filter(DUMP, 'botadmin', false);
    expect(out).toContain('DROP DATABASE IF EXISTS "bot";');
  });

  it('is byte-identical when there is nothing to change', async () => {
    const sql = 'SELECT 1;\n\\connect "a"\nCOPY t FROM stdin;\nx\ty\n\\.\n-- end';
    expect((await filter(sql, 'someone-else', true, 3)).out).toBe(sql);
  });
});
