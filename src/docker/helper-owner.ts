import { hostname } from 'node:os';

/** Labels that tie a helper container to the run that started it (see core/leftover-helpers.ts). */
export const HELPER_OWNER_LABELS = { helper: 'stackvault.helper', for: 'stackvault.helper-for', pid: 'stackvault.helper-pid', host: 'stackvault.helper-host' } as const;

/** The labels a run puts on each helper it starts for a container, so a later run can tell one it left behind. */
export function helperOwnerLabels(forContainer: string): Record<string, string> {
  return { [HELPER_OWNER_LABELS.helper]: 'true', [HELPER_OWNER_LABELS.for]: forContainer, [HELPER_OWNER_LABELS.pid]: String(process.pid), [HELPER_OWNER_LABELS.host]: hostname() };
}
