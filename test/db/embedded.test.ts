import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { openEmbedded } from '../../src/db/client.js';

/** The embedded database as `npm start` opens it: a real data directory on disk. */
describe('openEmbedded', () => {
  it('creates a new data directory (in a child process) and opens it with the small memory settings', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'streamgate-embedded-'));
    try {
      for (const open of ['new', 'existing']) {
        const db = await openEmbedded(join(dir, 'data'));
        try {
          const rows = await db.prisma.$queryRaw<
            { buffers: string }[]
          >`SELECT current_setting('shared_buffers') AS buffers`;
          expect([open, rows[0]?.buffers]).toEqual([open, '16MB']);
          if (open === 'new') await db.migrate();
          expect(await db.prisma.node.count()).toBe(0);
        } finally {
          await db.close();
        }
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 60_000);
});
