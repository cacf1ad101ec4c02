#!/usr/bin/env node
// `prisma generate` without network access: every Prisma 7 CLI command first tries to download
// the native schema engine, which `generate` never uses. Pointing PRISMA_SCHEMA_ENGINE_BINARY at
// any existing file skips the download. Never do this for `migrate` commands: with a dummy engine
// they exit 0 having done nothing (see ../shared/STACK-NOTES.md).
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const env = {
  ...process.env,
  PRISMA_SCHEMA_ENGINE_BINARY: process.execPath,
  PRISMA_HIDE_UPDATE_MESSAGE: '1',
  CHECKPOINT_DISABLE: '1',
};
const prismaBin = fileURLToPath(new URL('../node_modules/prisma/build/index.js', import.meta.url));
const result = spawnSync(process.execPath, [prismaBin, 'generate', ...process.argv.slice(2)], {
  stdio: 'inherit',
  env,
});
process.exit(result.status ?? 1);
