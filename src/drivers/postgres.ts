import type { Driver } from './types.js';
import { execChecked } from './exec.js';

/**
 * PostgreSQL: `pg_dumpall --clean --if-exists` inside the container, as $POSTGRES_USER over
 * the local socket (trust auth in the official image, so no password is involved). The dump
 * streams out through the exec stream; the exec's exit code decides success.
 */
export const postgresDriver: Driver = {
  name: 'postgres',
  format: 'sql',
  imageNames: ['postgres', 'postgresql', 'postgis', 'timescaledb'],

  secrets: (c) => [c.env.POSTGRES_PASSWORD, c.env.PGPASSWORD].filter((s): s is string => Boolean(s)),

  async backup({ engine, container, output }) {
    const user = superuser(container.env);
    const databases = (
      await execChecked(engine, container.id, ['psql', '-U', user, '-d', 'postgres', '-AtX', '-c', 'SELECT datname FROM pg_database WHERE datallowconn ORDER BY 1'], 'list databases')
    ).split('\n').filter(Boolean);
    const result = await engine.exec(container.id, ['pg_dumpall', '-U', user, '--clean', '--if-exists', '--quote-all-identifiers'], { stdout: output });
    if (result.exitCode !== 0) {
      throw new Error(`pg_dumpall exited with code ${result.exitCode}: ${firstLine(result.stderr) || 'no error output'}`);
    }
    return { details: { superuser: user, databases } };
  },
};

export function superuser(env: Record<string, string>): string {
  return env.POSTGRES_USER || 'postgres';
}

const firstLine = (text: string) => text.trim().split('\n')[0] ?? '';
