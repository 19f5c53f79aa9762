import { GenericContainer, type StartedTestContainer, Wait } from 'testcontainers';

/** Starts a MariaDB container of one of the local images as the service `db` of `project`. */
export function startMariadb(image: string, project: string, env: Record<string, string>): Promise<StartedTestContainer> {
  return new GenericContainer(image).withLabels({ 'com.docker.compose.project': project, 'com.docker.compose.service': 'db' }).withEnvironment(env).withWaitStrategy(Wait.forHealthCheck()).start();
}

/** Runs SQL with the server's own client as root over the socket; returns its tab-separated output. */
export async function sql(c: StartedTestContainer, query: string, db = ''): Promise<string> {
  const r = await c.exec(['mariadb', '-uroot', '-N', '-B', '--default-character-set=utf8mb4', ...(db ? [db] : []), '-e', query]);
  if (r.exitCode !== 0) throw new Error(`${query.slice(0, 80)}: ${r.stderr || r.output}`);
  return r.stdout.trim();
}

/**
 * The content as a test reads it, in its own client session with its own queries (not the
 * driver's CHECKSUM TABLE): per table every row's HEX() of every column in row order (the
 * stored bytes, in each column's own character set), databases with their character sets,
 * users with their authentication and grants, and routines, triggers, events and views with
 * their definitions and the settings they run under.
 */
export async function content(c: StartedTestContainer): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const system = "('mysql','information_schema','performance_schema','sys')";
  out.databases = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', SCHEMA_NAME, DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME) ORDER BY SCHEMA_NAME) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME NOT IN ${system}`,
  );
  const tables = (await sql(c, `SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_TYPE = 'BASE TABLE' AND TABLE_SCHEMA NOT IN ${system} ORDER BY 1`))
    .split('\n')
    .filter(Boolean);
  for (const t of tables) {
    const [db, name] = t.split('.') as [string, string];
    const cols = (await sql(c, `SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA='${db}' AND TABLE_NAME='${name}' ORDER BY ORDINAL_POSITION`)).split('\n');
    const row = `CONCAT_WS('|', ${cols.map((col) => `IFNULL(HEX(\`${col}\`), 'NULL')`).join(', ')})`;
    out[`table ${t}`] = await sql(
      c,
      `SET SESSION group_concat_max_len = 1073741824; SELECT COUNT(*), MD5(IFNULL(GROUP_CONCAT(${row} ORDER BY ${row} SEPARATOR '\\n'), '')) FROM \`${db}\`.\`${name}\``,
    );
    out[`create ${t}`] = (await sql(c, `SHOW CREATE TABLE \`${db}\`.\`${name}\``)).replace(/ AUTO_INCREMENT=\d+/, '');
  }
  out.users = await sql(c, "SELECT GROUP_CONCAT(CONCAT(User, '@', Host, ' ', MD5(Priv)) ORDER BY User, Host) FROM mysql.global_priv");
  out.grants = await sql(c, "SELECT GROUP_CONCAT(CONCAT_WS(' ', User, Host, Db, Select_priv, Insert_priv) ORDER BY User, Db) FROM mysql.db");
  out.routines = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', ROUTINE_SCHEMA, ROUTINE_NAME, ROUTINE_TYPE, MD5(ROUTINE_DEFINITION), SQL_MODE, DEFINER) ORDER BY 1) FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA NOT IN ${system}`,
  );
  out.triggers = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', TRIGGER_SCHEMA, TRIGGER_NAME, ACTION_TIMING, EVENT_MANIPULATION, MD5(ACTION_STATEMENT), SQL_MODE) ORDER BY 1) FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA NOT IN ${system}`,
  );
  out.events = await sql(
    c,
    `SELECT GROUP_CONCAT(CONCAT_WS(' ', EVENT_SCHEMA, EVENT_NAME, MD5(EVENT_DEFINITION), EVENT_TYPE, IFNULL(EXECUTE_AT, '-'), IFNULL(INTERVAL_VALUE, '-'), IFNULL(INTERVAL_FIELD, '-'), IFNULL(STARTS, '-'), STATUS, ON_COMPLETION, SQL_MODE, TIME_ZONE) ORDER BY 1) FROM information_schema.EVENTS WHERE EVENT_SCHEMA NOT IN ${system}`,
  );
  out.views = await sql(c, `SELECT GROUP_CONCAT(CONCAT_WS(' ', TABLE_SCHEMA, TABLE_NAME, MD5(VIEW_DEFINITION)) ORDER BY 1) FROM information_schema.VIEWS WHERE TABLE_SCHEMA NOT IN ${system}`);
  return out;
}
