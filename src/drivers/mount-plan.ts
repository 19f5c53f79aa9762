import { posix } from 'node:path';

/** A container mount as discovery sees it. */
export interface MountFacts {
  type: string;
  source: string;
  destination: string;
  rw: boolean;
  name?: string;
}

export type MountRole = 'data' | 'source-tree' | 'skipped';

export interface PlannedMount {
  destination: string;
  role: MountRole;
  /** Why, in a few words, for the output and the manifest. */
  why: string;
}

export interface ProjectFacts {
  /** The Compose files' paths (label com.docker.compose.project.config_files). */
  configFiles: string[];
  /** Bind sources known to hold a `.git` directory. */
  gitTrees?: string[];
}

const CONFIG_FILE = /(^\.env)|\.(ya?ml|json|conf|cfg|ini|toml|env|properties|xml|js|mjs|cjs|ts|py|sh|pem|crt|key)$/i;

/**
 * What of a container's mounts belongs in a backup. Decided once, here, and documented in
 * the README's table; pure and table-tested:
 *  - named and anonymous volumes: data;
 *  - read-write bind mounts: data, except the project's own source tree (a bind that holds
 *    the Compose file or a `.git`), of which only SQLite databases are taken;
 *  - read-only mounts, tmpfs, sockets, anything under /etc and single configuration files:
 *    configuration, skipped.
 */
export function planMounts(mounts: readonly MountFacts[], project: ProjectFacts): PlannedMount[] {
  return [...mounts].sort((a, b) => a.destination.localeCompare(b.destination)).map((m): PlannedMount => ({ destination: m.destination, ...roleOf(m, project) }));
}

function roleOf(m: MountFacts, project: ProjectFacts): { role: MountRole; why: string } {
  if (m.type === 'tmpfs' || m.type === 'npipe') return { role: 'skipped', why: `${m.type}: not kept across restarts` };
  if (/\.sock$/.test(m.destination) || /\.sock$/.test(m.source)) return { role: 'skipped', why: 'a socket' };
  if (!m.rw) return { role: 'skipped', why: 'read-only: configuration' };
  if (m.destination === '/etc' || m.destination.startsWith('/etc/')) return { role: 'skipped', why: 'under /etc: configuration' };
  if (m.type === 'volume') return { role: 'data', why: m.name && !/^[0-9a-f]{64}$/.test(m.name) ? `named volume ${m.name}` : 'anonymous volume' };
  if (m.type !== 'bind') return { role: 'skipped', why: `${m.type} mount` };
  if (CONFIG_FILE.test(posix.basename(m.destination))) return { role: 'skipped', why: 'a configuration file' };
  const inside = (dir: string) => dir === m.source || dir.startsWith(`${m.source.replace(/\/$/, '')}/`);
  if (project.configFiles.some((f) => inside(posix.dirname(f))))
    return { role: 'source-tree', why: `the project's source tree (holds ${posix.basename(project.configFiles[0]!)}): only SQLite databases in it are taken` };
  if (project.gitTrees?.some((g) => inside(g))) return { role: 'source-tree', why: "the project's source tree (holds .git): only SQLite databases in it are taken" };
  return { role: 'data', why: `bind mount of ${m.source}` };
}
