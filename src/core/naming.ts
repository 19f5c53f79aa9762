/**
 * Backup directory names: `<prefix>_backup_YYYYMMDD_HHMMSS[_N]` in UTC. The suffix `_N`
 * keeps two backups started in the same second apart. Pure functions, table-tested.
 */
const ID_PATTERN = /^(?<prefix>[A-Za-z0-9][A-Za-z0-9-]*)_backup_(?<stamp>\d{8}_\d{6})(?:_(?<seq>\d+))?$/;

export function timestampPart(date: Date): string {
  const p = (n: number, w = 2) => String(n).padStart(w, '0');
  return `${date.getUTCFullYear()}${p(date.getUTCMonth() + 1)}${p(date.getUTCDate())}_${p(date.getUTCHours())}${p(date.getUTCMinutes())}${p(date.getUTCSeconds())}`;
}

export function isValidPrefix(prefix: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/.test(prefix);
}

/** The first free id for `date`, given the names already taken. */
export function newBackupId(prefix: string, date: Date, taken: ReadonlySet<string>): string {
  const base = `${prefix}_backup_${timestampPart(date)}`;
  if (!taken.has(base)) return base;
  for (let n = 2; ; n++) if (!taken.has(`${base}_${n}`)) return `${base}_${n}`;
}

export interface ParsedBackupId {
  prefix: string;
  stamp: string;
  seq: number;
}

export function parseBackupId(name: string): ParsedBackupId | undefined {
  const m = ID_PATTERN.exec(name);
  if (!m?.groups) return undefined;
  return { prefix: m.groups.prefix!, stamp: m.groups.stamp!, seq: m.groups.seq ? Number(m.groups.seq) : 1 };
}

/**
 * The backup among `names` dated latest after `id` (by the time in its name, to the second), if
 * any. A new backup is named by this clock: one named later was made by a clock ahead of it (this
 * host's before it was set back, or another host's), and sorts after the new one.
 */
export function namedLater(names: Iterable<string>, id: string): string | undefined {
  const mine = parseBackupId(id);
  if (!mine) return undefined;
  let later: { name: string; stamp: string } | undefined;
  for (const name of names) {
    const p = parseBackupId(name);
    if (p && p.stamp > mine.stamp && (!later || p.stamp > later.stamp)) later = { name, stamp: p.stamp };
  }
  return later?.name;
}

/** A file name that is safe on any filesystem and still recognisable: `my db` -> `my_db`. */
export function safeFileStem(name: string): string {
  const stem = name
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._]+/, '')
    .slice(0, 80);
  return stem || 'service';
}
