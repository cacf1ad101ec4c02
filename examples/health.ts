/**
 * Follows `healthChanged` and prints every transition for STREAMGATE_EXAMPLE_SECONDS (default 10),
 * then stops. Run: `npx tsx examples/health.ts`.
 */
import { connect, listenSeconds } from './connect.js';

const sg = connect();
const changes = sg.healthChanged({});
// Stop after a while: return() ends the subscription, and the loop below with it.
const timer = setTimeout(() => void changes.return?.(), listenSeconds * 1000);
console.log(`following health changes for ${listenSeconds} s`);
for await (const { healthChanged: c } of changes) {
  const latency = c.latencyMs === null ? '' : ` (${c.latencyMs} ms)`;
  console.log(`${c.at} ${c.subjectKind} ${c.name}: ${c.from} → ${c.to}${latency}${c.detail ? ` — ${c.detail}` : ''}`);
}
clearTimeout(timer);
await sg.close();
console.log('done');
