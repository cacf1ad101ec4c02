import type { ChildProcess } from 'node:child_process';

/**
 * Stops a forked benchmark process: it exits on disconnect (writing its CPU profile, if any); one
 * still running after 5 s is killed.
 */
export function stopChild(proc: ChildProcess): Promise<void> {
  return new Promise<void>((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
    const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    proc.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    if (proc.connected) proc.disconnect();
    else proc.kill();
  });
}
