import type { ContainerDetails } from '../docker/engine.js';
import type { Driver } from '../drivers/types.js';

const SECRET_NAME = /PASS|SECRET|TOKEN|AUTH|CREDENTIAL|PRIVATE|API_?KEY/i;

/**
 * Every value that must never reach a manifest, log or terminal: what the driver knows to be
 * secret, plus any environment variable whose name looks secret.
 */
export function secretsOf(container: ContainerDetails, driver: Driver | undefined): string[] {
  const fromEnv = Object.entries(container.env)
    .filter(([k, v]) => SECRET_NAME.test(k) && v.length >= 4)
    .map(([, v]) => v);
  const fromDriver = driver?.secrets(container) ?? [];
  return [...new Set([...fromDriver, ...fromEnv])].filter((s) => s.length >= 4).sort((a, b) => b.length - a.length);
}

/** Replaces each secret with `***`. Longest first, so a secret containing another goes whole. */
export function redact(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) out = out.split(s).join('***');
  return out;
}
