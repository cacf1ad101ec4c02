import { createServer } from 'node:http';
import { Agent, request } from 'undici';
let conns = 0;
const s = createServer((req, res) => res.writeHead(200, {'content-type':'text/plain'}).end('ok\n'));
s.on('connection', () => conns++);
await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
const url = `http://127.0.0.1:${(s.address() as any).port}/`;
for (const variant of ['plain', 'signal', 'dumpsignal', 'both']) {
  const agent = new Agent({ keepAliveTimeout: 10_000 });
  conns = 0;
  for (let i = 0; i < 2; i++) {
    const c = new AbortController();
    const r = await request(url, { dispatcher: agent, signal: variant === 'signal' || variant === 'both' ? c.signal : undefined });
    await r.body.dump(variant === 'dumpsignal' || variant === 'both' ? { signal: new AbortController().signal } : undefined);
    if (variant === 'both') await new Promise((r) => setTimeout(r, 20));
  }
  console.log(variant, conns);
  await agent.close();
}
s.close();
