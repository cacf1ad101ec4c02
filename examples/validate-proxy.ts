/**
 * Validates a proxy destination step by step (syntax, DNS, TCP, HTTP) and prints each step as it
 * arrives, with its hint when it fails. Run: `npx tsx examples/validate-proxy.ts [destination]`
 * (default http://streamgate-example.invalid, whose name never resolves).
 */
import { connect } from './connect.js';

const sg = connect();
const destination = process.argv[2] ?? 'http://streamgate-example.invalid';
console.log(`validating ${destination}`);
for await (const { validateProxyProgress: p } of sg.validateProxyProgress({ input: { destination } })) {
  const { step } = p;
  console.log(
    `  ${step.ok ? 'ok  ' : 'FAIL'} ${step.name} (${step.durationMs} ms)${step.detail ? `: ${step.detail}` : ''}`,
  );
  if (step.hint) console.log(`       hint: ${step.hint}`);
  if (p.done) console.log(p.ok ? 'the destination is usable' : 'the destination is not usable');
}
await sg.close();
