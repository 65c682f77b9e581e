// The replicated state machine the simulator runs on every member: an append-only list of the payloads of
// committed normal entries. Small enough to snapshot as JSON, strong enough that any divergence in what members
// applied shows up as different lists.

export class ListStateMachine {
  items: string[] = [];
  /** Index of the last raft entry reflected in `items`. */
  applied = 0;

  apply(index: number, payload: string | undefined): void {
    if (index !== this.applied + 1) throw new Error(`state machine: apply index ${index} after ${this.applied}`);
    if (payload !== undefined) this.items.push(payload);
    this.applied = index;
  }

  snapshotData(): Uint8Array {
    return new TextEncoder().encode(JSON.stringify({ applied: this.applied, items: this.items }));
  }

  restore(data: Uint8Array, index: number): void {
    if (data.length === 0) {
      this.items = [];
    } else {
      const parsed = JSON.parse(new TextDecoder().decode(data)) as { applied: number; items: string[] };
      if (parsed.applied !== index)
        throw new Error(`state machine: snapshot data at ${parsed.applied}, metadata says ${index}`);
      this.items = parsed.items;
    }
    this.applied = index;
  }
}

export function encodeText(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

export function decodeText(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}
