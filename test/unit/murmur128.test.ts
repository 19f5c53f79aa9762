import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Murmur128, murmur128 } from '../../src/util/murmur128.js';

// Reference values of MurmurHash3_x86_128, seed 0, as printed by the murmurhash3js test suite
// (h1..h4 in hex), which checks itself against Appleby's SMHasher code.
const VECTORS: Array<[string, string]> = [
  ['', '00000000000000000000000000000000'],
  ['0', '0ab2409ea5eb34f8a5eb34f8a5eb34f8'],
  ['01', '0f87acb4674f3b21674f3b21674f3b21'],
  ['012', 'cd94fea54c13d78e4c13d78e4c13d78e'],
  ['0123', 'dc378fea485d3536485d3536485d3536'],
  ['01234', '35c5b3ee7b3b211600ae108800ae1088'],
  ['012345', 'db26dc756ce1944bf825536af825536a'],
  ['0123456', 'b708d0a186d15c02495d053b495d053b'],
  ['01234567', 'aa22bf849216040263b83c5e63b83c5e'],
  ['012345678', '571b5f6775d48126d0205c304ca675dc'],
  ['0123456789', '0017a61e2e528b33a5443f2057a11235'],
  ['0123456789a', '38a2ed0f921f15e42caa7f97a971884f'],
  ['0123456789ab', 'cfaa93f9b6982a7e53412b5d04d3d08f'],
  ['0123456789abc', 'c970af1dcc6d9d01dd00c683fc11eee3'],
  ['0123456789abcd', '6f34d20ac0a5114dae0d83c563f51794'],
  ['0123456789abcde', '3c76c46d4d0818c0add433daa78673fa'],
  ['0123456789abcdef', 'fb7d440936aed30a48ad1d9b572b3bfd'],
  ["I will not buy this tobacconist's, it is scratched.", '9b5b7ba2ef3f7866889adeaf00f3f98e'],
];

describe('MurmurHash3 x86_128', () => {
  it.each(VECTORS)('hashes %j as the reference does', (input, hex) => {
    expect(murmur128(Buffer.from(input, 'latin1')).toString('hex')).toBe(hex);
  });

  it('gives the same digest for any split of the input into pieces', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.array(fc.nat(300), { maxLength: 8 }), (bytes, cuts) => {
        const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
        const h = new Murmur128();
        let from = 0;
        for (const c of [...at, bytes.length]) {
          h.update(bytes.subarray(from, c));
          from = c;
        }
        expect(h.digest().toString('hex')).toBe(murmur128(bytes).toString('hex'));
      }),
    );
  });

  it('tells inputs apart that differ in one byte or in length', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, pos, delta) => {
        const changed = Uint8Array.from(bytes);
        const i = pos % bytes.length;
        changed[i] = (changed[i]! + delta) & 0xff;
        expect(murmur128(changed).equals(murmur128(bytes))).toBe(false);
        expect(murmur128(bytes.subarray(0, bytes.length - 1)).equals(murmur128(bytes))).toBe(false);
      }),
    );
  });
});
