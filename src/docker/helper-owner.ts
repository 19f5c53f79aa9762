import { readFileSync, readlinkSync } from 'node:fs';
import { hostname } from 'node:os';

/**
 * Labels that tie a container stackvault starts to the run that started it (see
 * core/leftover-helpers.ts). `pid` and `host` are on every one (helpers and throwaways; the
 * names say "helper" because helpers had them first, and runs of older versions set them so);
 * `helper` and `for` only on helpers, which discovery skips.
 */
export const HELPER_OWNER_LABELS = {
  helper: 'stackvault.helper',
  for: 'stackvault.helper-for',
  pid: 'stackvault.helper-pid',
  host: 'stackvault.helper-host',
  pidNamespace: 'stackvault.helper-pidns',
} as const;

/**
 * Where a run's pid means something: its host name, and the machine and pid namespace it runs in.
 * A host name alone is not enough: two stackvaults in containers named alike, or on two machines
 * named alike sharing one engine, would each take the other's live pid for a dead one and
 * remove the other's throwaways. The machine id, not the boot id, so that what a run left
 * before a reboot is still recognised after it.
 */
export interface RunPlace {
  host: string;
  /** The machine id and the pid namespace's inode; '' where /proc or /etc/machine-id cannot be read. */
  pidNamespace: string;
}

export function runPlace(): RunPlace {
  return { host: hostname(), pidNamespace: pidNamespaceId() };
}

function pidNamespaceId(): string {
  try {
    return `${readFileSync('/etc/machine-id', 'utf8').trim()}/${readlinkSync('/proc/self/ns/pid')}`;
  } catch {
    return '';
  }
}

/** What makes a container a throwaway: a verification target (`throwaway-for`, the backup directory) or a drill's copy (`drill-for`, the backup id). */
export const THROWAWAY_LABELS = { check: 'stackvault.throwaway-for', drill: 'stackvault.drill-for' } as const;
/** How their names begin (verify.ts, drill.ts). */
export const THROWAWAY_NAMES = { check: 'stackvault-verify-', drill: 'stackvault-drill-' } as const;

/** The labels naming this run as the owner of a container it starts. */
export function runOwnerLabels(): Record<string, string> {
  const { host, pidNamespace } = runPlace();
  return { [HELPER_OWNER_LABELS.pid]: String(process.pid), [HELPER_OWNER_LABELS.host]: host, ...(pidNamespace ? { [HELPER_OWNER_LABELS.pidNamespace]: pidNamespace } : {}) };
}

/** The labels a run puts on each helper it starts for a container, so a later run can tell one it left behind. */
export function helperOwnerLabels(forContainer: string): Record<string, string> {
  return { [HELPER_OWNER_LABELS.helper]: 'true', [HELPER_OWNER_LABELS.for]: forContainer, ...runOwnerLabels() };
}
