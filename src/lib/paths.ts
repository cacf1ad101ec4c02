import { resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = fileURLToPath(new URL('.', import.meta.url));

/** The project root, whether running from src/ (tsx, vitest) or from the build in dist/src/. */
export const PROJECT_ROOT = resolve(here, here.endsWith(`${sep}dist${sep}src${sep}lib${sep}`) ? '../../..' : '../..');
export const MIGRATIONS_DIR = resolve(PROJECT_ROOT, 'prisma/migrations');
