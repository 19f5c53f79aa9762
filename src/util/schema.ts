/**
 * Typed schemas for what a driver records in a manifest's `details` (manifests are input: a
 * crafted backup can hold anything). Small on purpose: the types drivers record are few, and a
 * schema package costs every run about as long to load as the Docker client.
 */
export interface Schema<T> {
  /** What a valid value is, in words ("a list of strings"). */
  readonly expected: string;
  /** The value, typed; throws SchemaError naming the path of the first thing that is wrong. */
  parse(value: unknown, path?: string): T;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

export class SchemaError extends Error {
  constructor(
    readonly path: string,
    readonly expected: string,
  ) {
    super(`${path} is not ${expected}`);
    this.name = 'SchemaError';
  }
}

const leaf = <T>(expected: string, ok: (v: unknown) => boolean): Schema<T> => ({
  expected,
  parse(value, path = 'value') {
    if (!ok(value)) throw new SchemaError(path, expected);
    return value as T;
  },
});

export const string = leaf<string>('a string', (v) => typeof v === 'string');
/** A string the check finds no problem with; the problem, when there is one, is part of the message. */
export function vetted(expected: string, problem: (value: string) => string | undefined): Schema<string> {
  return {
    expected,
    parse(value, path = 'value') {
      if (typeof value !== 'string') throw new SchemaError(path, expected);
      const why = problem(value);
      if (why) throw new SchemaError(path, `${expected} (${why})`);
      return value;
    },
  };
}

/** A string of a given form, e.g. a plain file name that cannot climb out of a directory. */
export const matching = (pattern: RegExp, expected: string) => leaf<string>(expected, (v) => typeof v === 'string' && pattern.test(v));
export const boolean = leaf<boolean>('true or false', (v) => typeof v === 'boolean');
/** Exactly true: a flag whose only recorded value is true. */
export const isTrue = leaf<true>('true', (v) => v === true);
/** A count or size: a whole number, zero or more. */
export const count = leaf<number>('a whole number of 0 or more', (v) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0);

export function array<T>(of: Schema<T>): Schema<T[]> {
  return {
    expected: `a list, each ${of.expected}`,
    parse(value, path = 'value') {
      if (!Array.isArray(value)) throw new SchemaError(path, this.expected);
      return value.map((v, i) => of.parse(v, `${path}[${i}]`));
    },
  };
}

/** A record of any keys, each value of one kind (a table name to its row count). */
export function record<T>(of: Schema<T>): Schema<Record<string, T>> {
  return {
    expected: `a record, each value ${of.expected}`,
    parse(value, path = 'value') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SchemaError(path, this.expected);
      for (const [key, v] of Object.entries(value)) of.parse(v, `${path}.${key}`);
      return value as Record<string, T>;
    },
  };
}

/** A value that may be absent (undefined); null is not absent. */
export function optional<T>(of: Schema<T>): Schema<T | undefined> & { readonly optional: true } {
  return { optional: true, expected: `${of.expected}, or absent`, parse: (value, path) => (value === undefined ? undefined : of.parse(value, path)) };
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = { [K in keyof S]: S[K] extends { optional: true } ? K : never }[keyof S];
type ObjectOf<S extends Shape> = { [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & { [K in OptionalKeys<S>]?: Infer<S[K]> };

/**
 * A record with these keys. Keys it does not name are kept as they are (a newer stackvault may
 * record more); the keys it names are checked.
 */
export function object<S extends Shape>(shape: S): Schema<{ [K in keyof ObjectOf<S>]: ObjectOf<S>[K] }> {
  return {
    expected: `a record of ${Object.keys(shape).join(', ') || 'anything'}`,
    parse(value, path = 'value') {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new SchemaError(path, this.expected);
      const record = value as Record<string, unknown>;
      for (const [key, schema] of Object.entries(shape)) schema.parse(record[key], `${path}.${key}`);
      return record as never;
    },
  };
}
