import { type ChildProcess, spawn } from 'node:child_process';
import { expect } from 'vitest';
import { eventually } from './eventually.js';
import { closedPort } from './fake-node.js';
import { dispose } from './leftovers.js';

/**
 * A private `redis-server` (no persistence) that a test may kill and start again on the same port:
 * what a Redis restart looks like to the instances using it. Killed after the file.
 */
export class PrivateRedis {
  private child: ChildProcess | undefined;

  private constructor(readonly port: number) {}

  static async start(): Promise<PrivateRedis> {
    const redis = new PrivateRedis(await closedPort());
    await redis.start();
    return redis;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: 'ignore' },
    );
    this.child = child;
    dispose(child, (c) => c.kill('SIGKILL'));
    await eventually(async () => {
      const probe = await fetch(`http://127.0.0.1:${this.port}`).catch((e: Error) => e);
      // Redis answers an HTTP request by closing the connection: anything but a refusal is up.
      expect(String((probe as Error).cause ?? probe)).not.toMatch(/ECONNREFUSED/);
    }, 10_000);
  }

  /** SIGKILL, and waits until it is gone. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGKILL');
    await gone;
  }
}
