import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Manifest } from '../../src/core/manifest.js';
import { tempDir } from './artifacts.js';
import { bot } from './cli.js';
import { downLayout, type Layout, type LayoutName, upLayout } from './layouts.js';
import { changeStack, seedStack, stackContent } from './stack-content.js';

/**
 * One real-stack layout, whole: bring it up on the local images, seed every store and every
 * data mount, `backup create --project X` with no other flag, change everything,
 * `backup restore latest --yes`; every service restored with its content check equal, and the
 * content read with the stores' own tools equal to what was seeded.
 */
export function layoutRoundTrip(
  name: LayoutName,
  expectServices: string[],
  /** Further checks of the backup: its manifest, and what `backup create` told the user (stderr). */
  alsoCheck?: (manifest: Manifest, told: string) => void,
): void {
  describe(`layout ${name}`, () => {
    let layout: Layout;
    let seeded: Record<string, string>;
    let dir: string;

    beforeAll(async () => {
      layout = await upLayout(name);
      await seedStack(layout.project, layout.dir);
      seeded = await stackContent(layout.project, layout.dir);
      dir = await tempDir(`layout-${name}`);
    }, 300_000);

    afterAll(async () => {
      if (layout) await downLayout(layout);
    }, 120_000);

    it('backs up every store and data mount, and restores them whole', async () => {
      const created = await bot(['backup', 'create', '--json', '--project', layout.project, '--dir', dir], { timeout: 400_000 });
      expect(created.exitCode, String(created.stderr)).toBe(0);
      const manifest = JSON.parse(String(created.stdout)) as Manifest;
      expect(manifest.services.map((s) => `${s.name}:${s.driver}:${s.status}`).sort()).toEqual(expectServices);
      alsoCheck?.(manifest, String(created.stderr));

      await changeStack(layout.project, layout.dir);
      expect(await stackContent(layout.project, layout.dir)).not.toEqual(seeded);

      const restored = await bot(['backup', 'restore', 'latest', '--yes', '--json', '--dir', dir], { timeout: 600_000 });
      expect(restored.exitCode, `${String(restored.stderr)}\n${String(restored.stdout)}`).toBe(0);
      const result = JSON.parse(String(restored.stdout)) as { services: Array<{ service: string; status: string; check: string }> };
      expect(result.services.filter((s) => s.status !== 'restored' || s.check !== 'equal')).toEqual([]);
      expect(await stackContent(layout.project, layout.dir)).toEqual(seeded);
    }, 900_000);
  });
}
