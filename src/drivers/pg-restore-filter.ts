import { Transform } from 'node:stream';

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;
const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replaceAll('""', '"') : s);

/**
 * Rewrites a `pg_dumpall --clean --if-exists` script on its way into `psql -v ON_ERROR_STOP=1`
 * so that it replays onto a running server:
 *  - in the roles section (before the first \connect) the DROP and CREATE of the superuser we
 *    are connected as are dropped: that role cannot drop itself and already exists;
 *  - DROP DATABASE gets WITH (FORCE) (PostgreSQL >= 13), so an app's open connections do not
 *    stop the restore;
 *  - COPY data is passed through untouched.
 * It also records the roles the dump creates, so roles made since the backup can be removed.
 */
export class PgRestoreFilter extends Transform {
  readonly roles = new Set<string>();
  private rest = '';
  private inRoles = true;
  private inCopy = false;

  constructor(private readonly superuser: string, private readonly forceDrop: boolean) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null, d?: string) => void): void {
    const text = this.rest + chunk.toString('utf8');
    const cut = text.lastIndexOf('\n') + 1;
    this.rest = text.slice(cut);
    cb(null, this.lines(text.slice(0, cut)));
  }

  override _flush(cb: (e?: Error | null, d?: string) => void): void {
    cb(null, this.rest ? this.lines(this.rest) : '');
  }

  private lines(block: string): string {
    if (!block) return '';
    return block.split('\n').map((line) => this.line(line)).filter((l): l is string => l !== undefined).join('\n');
  }

  private line(line: string): string | undefined {
    if (this.inCopy) {
      if (line === '\\.') this.inCopy = false;
      return line;
    }
    if (/^COPY .* FROM stdin;$/.test(line)) {
      this.inCopy = true;
      return line;
    }
    if (line.startsWith('\\connect')) this.inRoles = false;
    if (this.inRoles) {
      const me = [ident(this.superuser), this.superuser];
      if (me.some((r) => line === `DROP ROLE IF EXISTS ${r};` || line === `CREATE ROLE ${r};`)) {
        this.roles.add(this.superuser);
        return undefined;
      }
      const created = /^CREATE ROLE ("(?:[^"]|"")+"|\S+);$/.exec(line);
      if (created) this.roles.add(unquote(created[1]!));
    }
    if (this.forceDrop) {
      const drop = /^DROP DATABASE (IF EXISTS )?("(?:[^"]|"")+"|\S+);$/.exec(line);
      if (drop) return `DROP DATABASE ${drop[1] ?? ''}${drop[2]} WITH (FORCE);`;
    }
    return line;
  }
}

export { ident as quoteIdent };
