import type { Dispatcher } from 'undici';

/**
 * An undici response body read whole as UTF-8 text, or null once it passes `maxBytes` (the rest is
 * not read, and the body is destroyed): for small JSON APIs, whose larger answers are not theirs.
 */
export async function readBodyText(body: Dispatcher.ResponseData['body'], maxBytes: number): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBytes) {
      body.destroy();
      return null;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
