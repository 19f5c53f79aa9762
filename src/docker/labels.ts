import { usageError } from '../errors.js';
import { HELPER_OWNER_LABELS, THROWAWAY_LABELS } from './helper-owner.js';
import { shown } from '../util/terminal.js';

/** Compose's label on a container it made: the project's working directory. */
export const COMPOSE_WORKING_DIR = 'com.docker.compose.project.working_dir';

/** The Compose files a container was made from (its label; v2 writes absolute paths, v1 paths relative to the working directory). */
export const composeConfigFiles = (labels: Readonly<Record<string, string>>): string[] =>
  (labels['com.docker.compose.project.config_files'] ?? '')
    .split(',')
    .map((f) => f.trim())
    .filter(Boolean);

/**
 * The `stackvault.*` labels: the ones people set (README, "Labels"), and the ones stackvault
 * puts on its own helpers, throwaways and local images. Every read of a boolean one goes
 * through `booleanLabel`, so `True` (what docker-compose v1 writes for the YAML `true`) means
 * true everywhere, and `yes` is refused rather than taken for false.
 */
export const USER_LABEL_KEYS = ['stackvault.driver', 'stackvault.exclude', 'stackvault.stop', 'stackvault.paths', 'stackvault.sqlite.paths', 'stackvault.consistent', 'stackvault.writer'] as const;

const OWN_LABEL_KEYS = [...Object.values(HELPER_OWNER_LABELS), ...Object.values(THROWAWAY_LABELS), 'stackvault.build-hash'];

export const KNOWN_LABEL_KEYS: ReadonlySet<string> = new Set([...USER_LABEL_KEYS, ...OWN_LABEL_KEYS]);

/** The labels that take true or false. */
export const BOOLEAN_LABEL_KEYS = ['stackvault.exclude', 'stackvault.stop', 'stackvault.consistent', 'stackvault.writer', 'stackvault.helper'] as const;

interface Labelled {
  name: string;
  labels: Record<string, string>;
}

/**
 * A boolean label: `true` or `false` in any case, spaces around ignored (docker-compose v1
 * writes Python's `True`/`False` for a YAML boolean); undefined when the label is absent.
 * Anything else (`yes`, `1`, empty) is a usage error naming the container and the label:
 * guessing would stop a container someone excluded, or copy hot one they wanted stopped.
 */
export function booleanLabel(container: Labelled, key: string): boolean | undefined {
  const raw = container.labels[key];
  if (raw === undefined) return undefined;
  const value = raw.trim().toLowerCase();
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw usageError(`Container ${container.name} has label ${key}=${JSON.stringify(raw)}, which stackvault does not read as a boolean: it takes true or false (in any case).`);
}

/** True when the boolean label is set to true (see `booleanLabel`: other values than true/false throw). */
export const labelledTrue = (container: Labelled, key: string): boolean => booleanLabel(container, key) === true;

/** Throws for the first boolean label of the container whose value is not true or false. */
export function checkBooleanLabels(container: Labelled): void {
  for (const key of BOOLEAN_LABEL_KEYS) booleanLabel(container, key);
}

/**
 * One warning per `stackvault.*` label key stackvault does not know (a typo such as
 * `stackvault.exlude` or `stackvault.Exclude` would otherwise be ignored without a word), with
 * the nearest documented key.
 */
export function unknownLabelWarnings(container: Labelled): string[] {
  return Object.keys(container.labels)
    .filter((key) => key.toLowerCase().startsWith('stackvault.') && !KNOWN_LABEL_KEYS.has(key))
    .sort()
    .map((key) => `container ${shown(container.name)} has label ${shown(key)}, which stackvault does not know and ignores (did you mean ${nearestLabelKey(key)}?).`);
}

/** The documented key nearest to `key` (edit distance, case ignored; ties go to the first listed). */
export function nearestLabelKey(key: string): string {
  const k = key.toLowerCase();
  let best: string = USER_LABEL_KEYS[0];
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const known of USER_LABEL_KEYS) {
    const d = editDistance(k, known);
    if (d < bestDistance) {
      best = known;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length]!;
}
