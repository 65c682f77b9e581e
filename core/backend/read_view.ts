// The read interface a backend read hands out, on the main thread and inside worker threads alike.
// A ReadTask is a pure function over a ReadView. Tasks that run in workers are shipped as source text
// (Function.prototype.toString), so they must be self-contained: no imports, no closures, no helpers
// outside their own body. The same function runs on the main thread, so both paths share one code path.
// A task returns plain data; a top-level Uint8Array field that owns its whole ArrayBuffer is transferred from a
// worker, not copied (so a task never returns a view of a buffer it keeps using).
//
// Output slabs: in a worker, a task producing a large result (a LIST's ~100 MB) asks the view to lend it an
// output slab, a growable SharedArrayBuffer the worker reuses from task to task, and returns views of it. The
// result reaches the main thread without a copy or a transfer and carries `release()` (Lent): whoever consumes it
// calls release() once nothing will read those views again (the API: when the response has been written to the
// socket), and the slab goes back to the worker for the next task. A result never released is given back when
// the main thread's garbage collector finds its slab unreachable, so forgetting costs memory for a while, never
// correctness; releasing while a view is still read is the one misuse (the next task overwrites the bytes).

export interface RangeSpan {
  /** First key (inclusive); undefined = from the first key of the bucket. */
  readonly start?: Uint8Array;
  /** End key (exclusive); undefined = to the last key. With `reverse`, start is the upper bound. */
  readonly end?: Uint8Array;
  readonly reverse?: boolean;
  readonly limit?: number;
  /**
   * The view may end its read snapshot between entries and go on in a newer one (forward spans without a limit;
   * in worker threads), so a long scan never pins old pages: while any snapshot is open LMDB cannot reuse the
   * pages later commits free, and every commit then writes fresh pages at the end of the file. Only for tasks
   * that read history by revision (entries committed meanwhile have newer revisions and are filtered) and that
   * check afterwards that nothing was compacted meanwhile.
   */
  readonly renewable?: boolean;
  /**
   * On the main thread too, entries may be views of a buffer the next step (or any other read) overwrites, as a
   * worker's always are: for callers that copy what they keep (range_task.ts), which then copy no value they
   * skip. Other callers get entries they may keep.
   */
  readonly views?: boolean;
}

export interface Entry {
  readonly key: Uint8Array;
  readonly value: Uint8Array;
}

export interface ReadView {
  get(bucket: string, key: Uint8Array): Uint8Array | undefined;
  /**
   * Entries in key order. An entry's key and value may be views of a buffer that the next step of the iteration
   * overwrites (a worker's scan copies nothing per entry): a task copies whatever it keeps past the step.
   */
  range(bucket: string, span: RangeSpan): Iterable<Entry>;
  /**
   * Worker threads only: the output slab lent to the running task (the same one on every call within a task),
   * possibly holding an earlier task's bytes and already longer than needed; grow() it for room. Undefined on
   * the main thread.
   */
  lendOutput?(): Slab;
}

/** A growable SharedArrayBuffer (ES2024; this project's TypeScript lib predates it). */
export type Slab = SharedArrayBuffer & { grow(bytes: number): void; readonly maxByteLength: number };

/** A worker task's result whose views share a lent output slab (see the file comment). */
export type Lent<R> = R & { readonly release?: () => void };

export interface WriteView extends ReadView {
  put(bucket: string, key: Uint8Array, value: Uint8Array): void;
  del(bucket: string, key: Uint8Array): void;
  /**
   * Runs `fn` in a child transaction of this one: a throw rolls back every write `fn` made and is rethrown.
   * Absent where the backend has no child transactions.
   */
  atomic?<T>(fn: (tx: WriteView) => T): T;
}

/** A pure read over a snapshot; see the file comment for the self-containment rule. */
export type ReadTask<A, R> = (view: ReadView, args: A) => R;
