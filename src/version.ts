import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
/** Read from package.json so that manifests always name the version that wrote them. */
export const TOOL_VERSION: string = (require('../package.json') as { version: string }).version;
export const TOOL_NAME = 'stackvault';
