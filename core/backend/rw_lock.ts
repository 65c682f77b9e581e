// A writer-preferring read/write lock, the shape of Go's sync.RWMutex that etcd 3.3's backend used for its
// shared read transaction: readers share it; a waiting writer stops new readers from entering, so a reader
// that arrives after a queued commit waits behind the commit, which itself waits for the long reader.
// Used only by the backend's `blocking` read mode; the `concurrent` mode takes no lock at all.

type Waiter = { readonly write: boolean; readonly wake: () => void };

export class RwLock {
  /**
   * Turns the held write lock into a read lock without letting a writer in between (a read that first commits
   * what is buffered, then reads it). The write lock's release function must not be called afterwards.
   */
  downgrade(): () => void {
    if (!this.writing) throw new Error("RwLock: downgrade without the write lock");
    this.writing = false;
    this.readers += 1;
    this.dispatch();
    return this.releaseReadOnce();
  }

  /** Readers holding the lock now; > 0 excludes a writer. */
  private readers = 0;
  /** Whether a writer holds the lock; excludes readers and other writers. */
  private writing = false;
  /** FIFO of waiters; a writer at the head blocks every reader behind it. */
  private readonly queue: Waiter[] = [];

  async acquireRead(): Promise<() => void> {
    if (!this.writing && this.queue.length === 0) {
      this.readers += 1;
      return this.releaseReadOnce();
    }
    await new Promise<void>((wake) => this.queue.push({ write: false, wake }));
    return this.releaseReadOnce();
  }

  async acquireWrite(): Promise<() => void> {
    if (!this.writing && this.readers === 0 && this.queue.length === 0) {
      this.writing = true;
      return this.releaseWriteOnce();
    }
    await new Promise<void>((wake) => this.queue.push({ write: true, wake }));
    return this.releaseWriteOnce();
  }

  /** Readers holding the lock (for tests and metrics). */
  get activeReaders(): number {
    return this.readers;
  }

  /** Waiters queued behind the holder(s) (for tests and metrics). */
  get waiting(): number {
    return this.queue.length;
  }

  private releaseReadOnce(): () => void {
    let released = false;
    return () => {
      if (released) throw new Error("RwLock: read lock released twice");
      released = true;
      if (this.readers <= 0) throw new Error(`RwLock: readers(${this.readers}) <= 0 on release`);
      this.readers -= 1;
      this.dispatch();
    };
  }

  private releaseWriteOnce(): () => void {
    let released = false;
    return () => {
      if (released) throw new Error("RwLock: write lock released twice");
      released = true;
      if (!this.writing) throw new Error("RwLock: write lock released while not held");
      this.writing = false;
      this.dispatch();
    };
  }

  /** Hands the lock to the head of the queue: one writer, or every reader up to the next writer. */
  private dispatch(): void {
    if (this.writing) return;
    const head = this.queue[0];
    if (head === undefined) return;
    if (head.write) {
      if (this.readers > 0) return;
      this.queue.shift();
      this.writing = true;
      head.wake();
      return;
    }
    while (this.queue[0] !== undefined && !this.queue[0].write) {
      const reader = this.queue.shift();
      this.readers += 1;
      reader?.wake();
    }
  }
}
