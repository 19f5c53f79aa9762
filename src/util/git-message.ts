/**
 * What a failed git command said, in one line: its `fatal:`/`error:` lines when it has any,
 * else its first two lines (git explains first and suggests commands after: "There is no
 * tracking information for the current branch. Please specify which branch you want to merge
 * with." is the cause, "git branch --set-upstream-to=…" only one remedy). Two things git puts
 * around its error lines are the cause too and are kept: the line just before the first one
 * when a helper wrote it (ssh's "connect to host … Connection refused" before git's "Could not
 * read from remote repository"), and the tab-indented paths after an error line ending in ':'
 * ("Your local changes to the following files would be overwritten by merge:" named none). Pure.
 */
export function gitFailure(stderr: string): string {
  const raw = stderr.split('\n').filter((l) => l.trim());
  const isError = (l: string) => /^(fatal|error):/i.test(l.trim());
  const first = raw.findIndex(isError);
  if (first < 0)
    return (
      raw
        .slice(0, 2)
        .map((l) => l.trim())
        .join(' ') || 'git printed nothing'
    );
  const chosen: string[] = [];
  const before = raw[first - 1]?.trim();
  if (before && /^(ssh|[\w.-]+@[\w.-]+|Permission denied|Host key verification failed|remote):?/i.test(before)) chosen.push(before);
  let errors = 0;
  for (let i = first; i < raw.length && errors < 3; i++) {
    const line = raw[i]!;
    if (!isError(line)) continue;
    errors++;
    let text = line.trim();
    if (text.endsWith(':')) {
      const paths: string[] = [];
      for (let j = i + 1; j < raw.length && /^\s/.test(raw[j]!) && !isError(raw[j]!); j++) paths.push(raw[j]!.trim());
      if (paths.length) text += ` ${paths.length > 5 ? `${paths.slice(0, 5).join(', ')} and ${paths.length - 5} more` : paths.join(', ')}`;
    }
    chosen.push(text);
  }
  return chosen.join(' ');
}
