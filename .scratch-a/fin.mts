import { createServer as tcp, connect } from 'node:net';
const t = tcp((socket) => { socket.on('end', () => console.log('srv end')); socket.on('close', () => console.log('srv close')); socket.on('error', (e) => console.log('srv err', e.message)); socket.end('SSH-2.0-OpenSSH_9.6\r\n'); });
await new Promise<void>((r) => t.listen(0, '127.0.0.1', r));
const port = (t.address() as any).port;
for (const mode of ['destroy-after-data', 'destroy-after-end']) {
  console.log('--', mode);
  const c = connect(port, '127.0.0.1');
  await new Promise<void>((r) => c.once(mode === 'destroy-after-data' ? 'data' : 'end', () => r()));
  c.destroy();
  await new Promise((r) => setTimeout(r, 300));
}
process.exit(0);
