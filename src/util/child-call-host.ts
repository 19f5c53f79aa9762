import { registerHooks } from 'node:module';

/** The child side of inChild: runs one exported function and sends its result or its error's message, then exits. */
if (import.meta.url.endsWith('.ts')) {
  // Run from the sources (tests): a relative or file: import of x.js names x.ts.
  registerHooks({
    resolve(specifier, context, next) {
      try {
        return next(specifier, context);
      } catch (err) {
        if (/^(\.|file:)/.test(specifier) && specifier.endsWith('.js')) return next(`${specifier.slice(0, -3)}.ts`, context);
        throw err;
      }
    },
  });
}

process.once('message', async (m: { module: string; fn: string; args: unknown[] }) => {
  let reply: { result?: unknown; error?: string };
  try {
    const f = ((await import(m.module)) as Record<string, (...a: unknown[]) => unknown>)[m.fn];
    if (typeof f !== 'function') throw new Error(`${m.module} exports no function ${m.fn}`);
    reply = { result: await f(...m.args) };
  } catch (err) {
    reply = { error: err instanceof Error ? err.message : String(err) };
  }
  process.send!(reply, () => process.disconnect());
});
