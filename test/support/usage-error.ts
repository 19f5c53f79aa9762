import { expect } from 'vitest';
import { ExitCode, StackvaultError } from '../../src/errors.js';

/** The usage error (exit 2) `f` throws; fails the test when it throws nothing or something else. */
export function usageErrorOf(f: () => unknown): StackvaultError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(StackvaultError);
    expect((err as StackvaultError).exitCode).toBe(ExitCode.usage);
    return err as StackvaultError;
  }
  throw new Error('expected a usage error');
}
