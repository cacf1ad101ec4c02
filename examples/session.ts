/**
 * Creates a live session, watches it as an operator over the raw relay, publishes a few text and
 * binary frames as the client, prints what the operator received, and ends the session.
 * Run: `npx tsx examples/session.ts`.
 */
import { randomUUID } from 'node:crypto';
import { connect } from './connect.js';

const sg = connect();
const clientId = randomUUID();
const { createSession } = await sg.createSession({ clientId });
console.log(`session ${createSession.sessionId} is ${createSession.status}; publisher URL ${createSession.wsUrl}`);

const operator = await sg.sessions.watch(createSession.sessionId, 'example-operator');
const publisher = await sg.sessions.publish(createSession.sessionId, clientId, createSession.streamKey);
const frames = ['hello', new Uint8Array([0xde, 0xad, 0xbe, 0xef]), 'goodbye'];
for (const frame of frames) publisher.send(frame);

let received = 0;
for await (const frame of operator) {
  console.log(frame.binary ? `operator got ${frame.data.length} binary bytes` : `operator got text "${frame.data}"`);
  if (++received === frames.length) break;
}
const { endSession } = await sg.endSession({ id: createSession.sessionId });
const closed = await publisher.closed;
console.log(
  `session ${endSession.status}: ${endSession.framesRelayed} frames relayed; publisher closed ${closed.code} (${closed.meaning})`,
);
