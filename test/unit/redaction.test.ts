import { describe, expect, it } from 'vitest';
import { secretName, secretsInCommand, secretsInEnv, secretsOf, urlPassword } from '../../src/core/redact.js';
import { type ContainerDetails, type DockerEngine, foreignText, withSecrets, withSignal } from '../../src/docker/engine.js';
import { rawMessage, redactForeign, WITHHELD } from '../../src/util/redact.js';

/**
 * Secrets are hidden in foreign text only (what programs print, the engine's errors), as whole
 * tokens, and a short one withholds the text (src/util/redact.ts says why). Which values are
 * secrets is src/core/redact.ts.
 */
describe('redactForeign: where a secret in foreign text is hidden', () => {
  it.each([
    // [what, text, secrets, spare, expected]
    ['a quoted password', 'ERROR:  invalid input syntax for type integer: "data"', ['data'], [], 'ERROR:  invalid input syntax for type integer: "***"'],
    ['in a URL', 'could not connect to postgres://u:data@db/app', ['data'], [], 'could not connect to postgres://u:***@db/app'],
    ['not inside a word', 'metadata database data_dir', ['data'], [], 'metadata database data_dir'],
    ['a path stackvault gave the program (argv) is spared', "find: '/data/x': No such file or directory", ['data'], ['/data'], "find: '/data/x': No such file or directory"],
    ['the same word outside the spared text is not', "find: '/data/x': password data refused", ['data'], ['/data'], "find: '/data/x': password *** refused"],
    ['a spared text no longer than the secret spares nothing', 'database "data" does not exist', ['data'], ['data'], 'database "***" does not exist'],
    ['after a URL-encoded = (an escape counts as a boundary)', 'GET /x?password%3Ddata&y=1', ['data'], [], 'GET /x?password%3D***&y=1'],
    ['longest first: the whole NEO4J_AUTH value goes, not its password inside it', 'auth neo4j/data rejected', ['data', 'neo4j/data'], [], 'auth *** rejected'],
    ['every occurrence', 'pw=S3cret! again S3cret!', ['S3cret!'], [], 'pw=*** again ***'],
    ['a secret that ends in punctuation needs no boundary after it', 'x word$$y', ['word$$'], [], 'x ***y'],
    ['but one where it begins with a letter', 'x pa$$word$$y xword$$', ['word$$'], [], 'x pa$$***y xword$$'],
    ['a secret with a non-word edge is found beside letters', 'tok:abcd-efgh.', ['-efgh'], [], 'tok:abcd***.'],
    ['unicode letters are word characters', 'pässwort dätä', ['ä'], [], 'pässwort dätä'],
    ['a secret over several lines (a key in PEM form) goes whole', 'key:\n-----BEGIN K-----\nAAAA\n-----END K-----\nafter', ['-----BEGIN K-----\nAAAA\n-----END K-----'], [], 'key:\n***\nafter'],
    ['no secret: unchanged', 'plain text', [], [], 'plain text'],
    ['empty secrets are ignored', 'plain text', [''], [], 'plain text'],
  ])('%s', (_what, text, secrets, spare, expected) => {
    expect(redactForeign(text, secrets, spare)).toBe(expected);
  });

  it.each([
    ['a short password as a word withholds its line', 'ERROR:  invalid input syntax for type integer: "ab"', ['ab'], WITHHELD],
    ['only its line', 'NOTICE:  ok\nERROR:  "ab"\nHINT:  none', ['ab'], `NOTICE:  ok\n${WITHHELD}\nHINT:  none`],
    ['a one-character password too', 'exit 1 at line 3', ['1'], WITHHELD],
    ['a short password inside words only: shown as it is', 'about abstract tab', ['ab'], 'about abstract tab'],
    ['a short password that is part of a longer secret already hidden', 'auth neo4j/ab', ['neo4j/ab', 'ab'], 'auth ***'],
    ['a short password inside spared text', 'cannot stat /srv/ab/x', ['ab'], 'cannot stat /srv/ab/x'],
  ])('%s', (_what, text, secrets, expected) => {
    expect(redactForeign(text, secrets, ['/srv/ab'])).toBe(expected);
  });
});

describe('which variable names hold a secret', () => {
  it.each([
    ['POSTGRES_PASSWORD', true],
    ['MYSQL_PWD', true],
    ['DB_PW', true],
    ['PWD', false], // the shell's working directory
    ['OLDPWD', false],
    ['MINIO_SECRET_KEY', true],
    ['ENCRYPTION_KEY', true],
    ['SIGNING_KEY', true],
    ['APP_KEYS', true],
    ['API_KEY', true],
    ['SENTRY_DSN', true],
    ['DATABASE_DSN', true],
    ['NEO4J_AUTH', true],
    ['GITHUB_TOKEN', true],
    ['PASSWORD_SALT', true],
    ['POSTGRES_PASSWORD_FILE', false], // a path
    ['SSL_KEY_PATH', false],
    ['AUTH_ENABLED', false],
    ['PASSWORD_MIN_LENGTH', false],
    ['AWS_ACCESS_KEY_ID', false],
    ['OAUTH_CLIENT_ID', false],
    ['DATABASE_URL', false], // its password is taken from the value (below), not the whole URL
    ['POSTGRES_USER', false],
    ['PGDATA', false],
  ])('%s: %s', (name, secret) => {
    expect(secretName(name)).toBe(secret);
  });
});

describe('which values are secrets', () => {
  it.each([
    ['postgres://u:p4ss@h/db', ['p4ss']],
    ['redis://:pw@redis:6379/0', ['pw']],
    ['postgresql://app:S%40cret%2F1@db:5432/app?sslmode=require', ['S%40cret%2F1', 'S@cret/1']],
    ['mysql://u:p@ss@h/db', ['p@ss']], // an unescaped @ in the password: the user info ends at the last @
    ['amqp://guest@rabbit//', []], // a user, no password
    ['https://hc-ping.com/abc', []],
    ['not a url u:p@h', []],
    ['postgres://u:@h/db', []],
  ])('urlPassword(%j)', (value, expected) => {
    expect(urlPassword(value)).toEqual(expected);
  });

  it.each<[string, Record<string, string>, string[]]>([
    ['a secret-named variable: its whole value', { POSTGRES_PASSWORD: 'data' }, ['data']],
    ['a short one too', { DB_PWD: 'ab' }, ['ab']],
    ['DATABASE_URL: the password, not the URL', { DATABASE_URL: 'postgres://u:Url-Pw-77@h/db' }, ['Url-Pw-77']],
    ['REDIS_URL with only a password', { REDIS_URL: 'redis://:pw@h' }, ['pw']],
    ['a secret-named URL with a password: the password only', { SENTRY_DSN: 'https://key:sec@o1.ingest.sentry.io/1' }, ['sec']],
    ['a secret-named URL without one: the whole value (its token is in it)', { SENTRY_DSN: 'https://abc123@o1.ingest.sentry.io/1' }, ['https://abc123@o1.ingest.sentry.io/1']],
    ['ENCRYPTION_KEY and SIGNING_KEY', { ENCRYPTION_KEY: 'k1-aaaa', SIGNING_KEY: 'k2-bbbb', LOG_LEVEL: 'debug' }, ['k1-aaaa', 'k2-bbbb']],
    ['a libpq connection string in any variable', { PG_CONN: "host=db user=app password='Kv Pw' dbname=x" }, ['Kv Pw']],
    ['an ODBC one', { CONN: 'Server=db;Uid=app;Pwd=Odbc-9;' }, ['Odbc-9']],
    ['switch values are not passwords', { NEO4J_AUTH: 'none', REDIS_AUTH: 'false', X_TOKEN: '1' }, []],
    ['settings about a secret are not one', { ACCESS_TOKEN_EXPIRE_MINUTES: '30', PASSWORD_RESET_TIMEOUT: '3600', JWT_SECRET_LEVEL: 'high', TOKEN_LIMIT: '100' }, []],
    ['but a 4-digit PIN is', { APP_PIN_PASSWORD: '4711' }, ['4711']],
    ['a password file is a path', { POSTGRES_PASSWORD_FILE: '/run/secrets/pg' }, []],
    ['PWD is the working directory', { PWD: '/app', OLDPWD: '/' }, []],
    ['empty values', { POSTGRES_PASSWORD: '' }, []],
  ])('%s', (_what, env, expected) => {
    expect(secretsInEnv(env).sort()).toEqual([...expected].sort());
  });

  it.each<[string, string[], string[]]>([
    ['--requirepass X', ['redis-server', '--requirepass', 'Rq-1', '--appendonly', 'yes'], ['Rq-1']],
    ['--password=X', ['app', '--password=Pw-2'], ['Pw-2']],
    ['--api-key X', ['app', '--api-key', 'Key-3'], ['Key-3']],
    ['a shell line in one argument', ['sh', '-c', 'redis-server --requirepass Sh-4 --port 6379'], ['Sh-4']],
    ['a URL with a password as an argument', ['worker', '--broker', 'redis://:Br-5@redis/0'], ['Br-5']],
    ['a switch is not followed by its value', ['mongod', '--auth', '--bind_ip_all'], []],
    ['a --password-file names a path', ['app', '--password-file', '/run/secrets/x'], []],
    ["postgres's own settings are no secret", ['postgres', '-c', 'password_encryption=scram-sha-256', '--auth-host=scram-sha-256'], []],
  ])('%s', (_what, cmd, expected) => {
    expect(secretsInCommand(cmd)).toEqual(expected);
  });

  it('secretsOf: the driver’s, the environment’s and the command’s, longest first, short ones kept', () => {
    const container = { env: { NEO4J_AUTH: 'neo4j/ab', DATABASE_URL: 'postgres://u:Url-Pw@h/d' }, cmd: ['x', '--token', 'Tok-123'] } as unknown as ContainerDetails;
    const driver = { secrets: () => ['ab'] } as never;
    expect(secretsOf(container, driver)).toEqual(['neo4j/ab', 'Tok-123', 'Url-Pw', 'ab']);
  });
});

describe('withSecrets: the engine a service works through', () => {
  const failure = Object.assign(new Error('(HTTP code 409) container abc is paused; password data rejected'), { statusCode: 409, json: { message: 'password data rejected' } });
  const base = {
    engineNames: ['default'],
    select: () => base,
    exec: async () => ({ exitCode: 1, stdout: 'row with data', stderr: 'psql: FATAL: password "data" for /data/x' }),
    pause: async () => {
      throw failure;
    },
  } as unknown as DockerEngine;

  it('hides the secrets in stderr, sparing the argv, and leaves stdout (data) alone', async () => {
    const engine = withSecrets(base, ['data']);
    const r = await engine.exec('id', ['psql', '-f', '/data/x']);
    expect(r.stderr).toBe('psql: FATAL: password "***" for /data/x');
    expect(r.stdout).toBe('row with data');
  });

  it("hides them in the engine's errors, keeping what the error is and, for decisions only, what it said", async () => {
    const err = (await withSecrets(base, ['data'])
      .pause('abc')
      .catch((e: unknown) => e)) as Error & { statusCode?: number; json?: unknown };
    expect(err.message).toBe('(HTTP code 409) container abc is paused; password *** rejected');
    expect(err.stack).not.toContain('password data');
    expect(err.statusCode).toBe(409);
    expect(err.json).toBeUndefined();
    expect(rawMessage(err)).toBe(failure.message);
    expect(JSON.stringify(err)).not.toContain('password data');
    expect(failure.message).toContain('password data'); // the engine's own error object is not changed
  });

  it('carries through withSignal and select; foreignText is identity without it', () => {
    const engine = withSignal(withSecrets(base, ['data']), new AbortController().signal);
    expect(foreignText(engine, 'said data')).toBe('said ***');
    expect(foreignText(engine.select(), 'said data')).toBe('said ***');
    expect(foreignText(base, 'said data')).toBe('said data');
  });
});
