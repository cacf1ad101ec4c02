/**
 * Runs tasks one at a time per key, in submission order. Every database step of one session
 * (reading it to open its channel, status transitions, counter flushes, ending it) goes through
 * here, so a publisher that drops and reconnects at once cannot have its WAITING land after its
 * ACTIVE, and a channel is never opened from a read older than a write still in flight.
 */
export class KeyedSerializer {
  private readonly tails = new Map<string, Promise<void>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(task);
    const tail = result.then(
      () => {},
      () => {},
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Resolves when every task submitted so far (and any they submit) has settled. */
  async drain(): Promise<void> {
    while (this.tails.size > 0) await Promise.all(this.tails.values());
  }
}
