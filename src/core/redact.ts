import type { ContainerDetails } from '../docker/engine.js';
import type { Driver } from '../drivers/types.js';
import { redactForeign } from '../util/redact.js';

/**
 * Which values of a container are secrets. Where they are hidden, and how, is util/redact.ts:
 * in foreign text (what programs print, the engine's errors), never in stackvault's own words.
 *
 * A variable is a secret when its name says it holds one. Hiding a value that is no secret
 * costs little (it is hidden only in foreign text), but a short one (1-3 characters) makes
 * every foreign text that holds it as a word withheld whole, so names that say the value is
 * something else (a file, a switch, a length, a user) are left out, as are switch-like values.
 */
const SECRET_NAME = /PASS|SECRET|TOKEN|AUTH|CREDENTIAL|PRIVATE|API_?KEY|_(?:PWD|PW)$|KEYS?$|DSN$|SALT$/i;
/** Names that say what the value is, and it is not the secret: `POSTGRES_PASSWORD_FILE`, `AUTH_ENABLED`, `PASSWORD_MIN_LENGTH`. */
const NOT_A_SECRET =
  /_(?:FILE|PATH|DIR|DIRECTORY|HOST|HOSTNAME|PORT|USER|USERNAME|NAME|ID|ENABLED|DISABLED|ENABLE|DISABLE|REQUIRED|TYPE|MODE|METHOD|METHODS|PROVIDER|PLUGIN|LENGTH|TIMEOUT|TTL|EXPIRY|EXPIRES|EXPIRE|LIFETIME|SECONDS|MINUTES|HOURS|DAYS|SIZE|COUNT|LIMIT|MIN|MAX|LEVEL|VERSION|ALGORITHM|ALG|ROUNDS|ITERATIONS|COST)$/i;
/**
 * Values that set something rather than guard it: switches (`AUTH=none`, `X_AUTH=true`) and
 * numbers of 1-3 digits (`ACCESS_TOKEN_EXPIRE_MINUTES=30`), which as a secret would withhold
 * every foreign line with that number in it. A driver's own password variables are taken
 * whatever they hold.
 */
const SWITCH = /^(?:true|false|yes|no|on|off|none|null|disabled|enabled|\d{1,3})$/i;

/** Whether a variable (or a `--flag`, as `FLAG`) is named as one that holds a secret. */
export function secretName(name: string): boolean {
  return SECRET_NAME.test(name) && !NOT_A_SECRET.test(name);
}

/**
 * The password of a URL-shaped value (`postgres://user:PASSWORD@host/db`, `redis://:PASSWORD@h`),
 * as written and percent-decoded: what leaks of such a value is its password, while the rest
 * (where it points) is no secret. The authority ends at the first `/`, `?` or `#` after `//`,
 * and its user info at the last `@` in it (a sloppy DSN leaves an `@` of the password unescaped).
 */
export function urlPassword(value: string): string[] {
  const authority = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#\s]*)/.exec(value.trim())?.[1];
  const at = authority?.lastIndexOf('@') ?? -1;
  if (!authority || at < 0) return [];
  const userInfo = authority.slice(0, at);
  const colon = userInfo.indexOf(':');
  if (colon < 0) return [];
  const password = userInfo.slice(colon + 1);
  if (!password) return [];
  let decoded = password;
  try {
    decoded = decodeURIComponent(password);
  } catch {
    // not valid percent-encoding: it is only what is written
  }
  return [...new Set([password, decoded])];
}

/** `password=X` (libpq and ODBC connection strings, URL queries) inside any value: X. */
const KEY_VALUE = /(?:^|[\s;&?,])(?:password|passwd|pwd|secret|token|api_?key|access_token)\s*=\s*(?:'([^']*)'|"([^"]*)"|([^\s;&,]+))/gi;

function keyValueSecrets(value: string): string[] {
  return [...value.matchAll(KEY_VALUE)].map((m) => m[1] ?? m[2] ?? m[3] ?? '').filter(Boolean);
}

/** The secrets a value holds, whatever its name: a URL's password, `password=X` pairs. */
const secretsInValue = (value: string): string[] => [...urlPassword(value), ...keyValueSecrets(value)];

/** The secrets of an environment: values of secret-named variables (a URL-shaped one: its password only) and those inside any value. */
export function secretsInEnv(env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [name, value] of Object.entries(env)) {
    if (!value) continue;
    const inside = secretsInValue(value);
    out.push(...inside);
    // A URL with a password in it: the password is the secret, not where the URL points.
    const urlWithPassword = urlPassword(value).length > 0;
    if (secretName(name) && !urlWithPassword && !SWITCH.test(value.trim())) out.push(value);
  }
  return out;
}

/**
 * The secrets in a command line: `--NAME VALUE` and `--NAME=VALUE` where NAME reads as a secret
 * (`--requirepass`, `--password`, `--api-key`), also inside one argument that is a shell line
 * (`sh -c "redis-server --requirepass X"`), and what a value holds (a URL's password).
 */
export function secretsInCommand(cmd: readonly string[]): string[] {
  const out: string[] = [];
  const words = cmd.flatMap((arg) => [arg, ...(/\s/.test(arg) ? arg.split(/\s+/).filter(Boolean) : [])]);
  const flagName = (w: string) => w.replace(/^--?/, '').replace(/-/g, '_');
  for (let i = 0; i < words.length; i++) {
    const w = words[i]!;
    out.push(...secretsInValue(w));
    if (!w.startsWith('-')) continue;
    const eq = w.indexOf('=');
    if (eq > 0) {
      const value = w.slice(eq + 1);
      if (secretName(flagName(w.slice(0, eq))) && value && !SWITCH.test(value) && urlPassword(value).length === 0) out.push(value);
      continue;
    }
    const next = words[i + 1];
    if (secretName(flagName(w)) && next !== undefined && next !== '' && !next.startsWith('-') && !SWITCH.test(next) && urlPassword(next).length === 0) out.push(next);
  }
  return out;
}

/**
 * Every value that must never reach a manifest, log or terminal: what the driver knows to be
 * secret, plus what the environment and the command line hold by the rules above. Longest
 * first. Short ones too (util/redact.ts says what becomes of them).
 */
export function secretsOf(container: ContainerDetails, driver: Driver | undefined): string[] {
  const found = [...(driver?.secrets(container) ?? []), ...secretsInEnv(container.env), ...secretsInCommand(container.cmd)];
  return [...new Set(found)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
}

/**
 * Secrets this long are also hidden in stackvault's own words, as a net under the foreign text
 * a code path might hand on without util/redact.ts: none of ours is expected to hold one, and
 * a string of 12 characters or more turning up in them by chance is not a real case (a common
 * password such as a store's own name or `data` is, which is why shorter ones are not hidden there).
 */
const NET_LENGTH = 12;

/** A message of ours with any long secret in it hidden (see NET_LENGTH). */
export function redactNet(text: string, secrets: readonly string[]): string {
  return redactForeign(
    text,
    secrets.filter((s) => s.length >= NET_LENGTH),
  );
}
