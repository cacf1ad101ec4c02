/**
 * One pool of routes keyed by a string (an alias), GoDoxy's `pool.Pool`: O(1) get, add, delete.
 * Iteration goes over a snapshot taken when it starts (rebuilt only after a change), so a caller
 * that awaits between items sees one consistent set however the pool changes meanwhile.
 */
export class Pool<T> {
  private readonly items = new Map<string, T>();
  private snapshot: readonly T[] | null = null;

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  has(key: string): boolean {
    return this.items.has(key);
  }

  /** Adds or replaces. */
  add(key: string, item: T): void {
    this.items.set(key, item);
    this.snapshot = null;
  }

  del(key: string): boolean {
    const deleted = this.items.delete(key);
    if (deleted) this.snapshot = null;
    return deleted;
  }

  get size(): number {
    return this.items.size;
  }

  clear(): void {
    this.items.clear();
    this.snapshot = null;
  }

  /** The items as they are now; later changes do not show in the returned array. */
  values(): readonly T[] {
    this.snapshot ??= Object.freeze([...this.items.values()]);
    return this.snapshot;
  }

  keys(): IterableIterator<string> {
    return this.items.keys();
  }

  /** Live entries (not a snapshot): deleting the current entry while iterating is safe. */
  entries(): IterableIterator<[string, T]> {
    return this.items.entries();
  }

  [Symbol.iterator](): Iterator<T> {
    return this.values()[Symbol.iterator]();
  }
}
