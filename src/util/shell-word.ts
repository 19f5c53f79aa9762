/** A word for a shell command shown to the user: as it is when it needs no quoting, else in single quotes. Pure. */
export const shellWord = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`);
