/**
 * What Debian's cron does with one crontab line, written apart from src/ (a port of cron
 * 3.0pl1's entry.c and do_command.c), so tests check stackvault's lines against cron's rules
 * rather than against its own reading of them: skip the five time fields or the @ shorthand,
 * then the command is everything up to the first `%` not escaped by a backslash; `\%` becomes
 * `%`, any other backslash pair stays; after that `%` the rest is stdin, each `%` a newline.
 */
export function cronRuns(line: string): { schedule: string; command: string; stdin?: string } | undefined {
  if (line.trim() === '' || line.trimStart().startsWith('#') || /^\s*[A-Za-z_][A-Za-z0-9_]*\s*=/.test(line)) return undefined;
  const m = /^\s*(@[a-z]+|(?:[^\s]+[ \t]+){4}[^\s]+)[ \t]+([^\n]*)$/.exec(line);
  if (!m) throw new Error(`cron would refuse this line: ${JSON.stringify(line)}`);
  const cmd = m[2]!;
  const out: string[] = [];
  let escaped = false;
  for (let i = 0; i < cmd.length; i++) {
    const ch = cmd[i]!;
    out.push(ch);
    if (escaped) {
      if (ch === '%') {
        out.pop();
        out[out.length - 1] = '%'; // *--p = ch: the % overwrites the backslash
      }
      escaped = false;
      continue;
    }
    if (ch === '\\') {
      escaped = true;
      continue;
    }
    if (ch === '%') {
      out.pop();
      return { schedule: m[1]!, command: out.join(''), stdin: cmd.slice(i + 1).replaceAll('%', '\n') };
    }
  }
  return { schedule: m[1]!, command: out.join('') };
}
