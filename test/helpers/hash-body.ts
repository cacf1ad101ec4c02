import { createHash } from 'node:crypto';
import type { IncomingMessage } from 'node:http';

// Shared by the fake node and bench/ (which runs outside vitest, so no test hooks in here).
/** Size and SHA-256 of a request body, streamed: nothing is kept in memory. */
export function hashBody(req: IncomingMessage): Promise<{ bytes: number; sha256: string }> {
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let bytes = 0;
    req.on('data', (chunk: Buffer) => {
      bytes += chunk.length;
      hash.update(chunk);
    });
    req.on('end', () => resolve({ bytes, sha256: hash.digest('hex') }));
    req.on('error', reject);
  });
}
