/**
 * What a failed git command said, in one line: its `fatal:`/`error:` lines when it has any,
 * else its first two lines (git explains first and suggests commands after: "There is no
 * tracking information for the current branch. Please specify which branch you want to merge
 * with." is the cause, "git branch --set-upstream-to=…" only one remedy). Pure.
 */
export function gitFailure(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  const errors = lines.filter((l) => /^(fatal|error):/i.test(l));
  const chosen = (errors.length ? errors : lines).slice(0, errors.length ? 3 : 2);
  return chosen.join(' ') || 'git printed nothing';
}
