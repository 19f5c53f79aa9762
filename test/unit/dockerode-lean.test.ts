import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

describe('dockerode, loaded without what stackvault does not use', () => {
  it('loads dockerode and docker-modem, but neither grpc/protobuf (BuildKit sessions) nor ssh2', async () => {
    await import('../../src/docker/dockerode-engine.js');
    const loaded = Object.keys(createRequire(import.meta.url).cache);
    expect(loaded.some((f) => /node_modules\/dockerode\/lib\/docker\.js$/.test(f))).toBe(true);
    expect(loaded.some((f) => /node_modules\/docker-modem\/lib\/modem\.js$/.test(f))).toBe(true);
    expect(loaded.filter((f) => /node_modules\/(@grpc|protobufjs|ssh2)\//.test(f))).toEqual([]);
  });

  it('a stubbed module says why if it is ever called', () => {
    const require = createRequire(import.meta.url);
    const session = require(createRequire(require.resolve('dockerode')).resolve('./session.js')) as () => void;
    expect(() => session()).toThrow(/BuildKit session is not loaded by stackvault/);
  });
});
