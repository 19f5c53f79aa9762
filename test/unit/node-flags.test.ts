import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
// @ts-expect-error: a script of the benchmark, plain JavaScript without types
import { nodeFlags } from '../../scripts/bench/procedures.mjs';

const root = new URL('../../', import.meta.url);

describe("the CLI's Node flags", () => {
  it('are the same whether it runs as ./bot.sh, as dist/cli.js (its first line) or in the benchmark', () => {
    const shebang = nodeFlags(fileURLToPath(new URL('src/cli.ts', root))) as string[];
    expect(shebang).toContain('--max-semi-space-size=1');
    const exec = /^exec node (.*) "\$SV_ROOT\/dist\/cli\.js" "\$@"$/m.exec(readFileSync(new URL('bot.sh', root), 'utf8'));
    expect(exec?.[1]?.split(' ')).toEqual(shebang);
  });
});
