// --auto-compaction-mode / --auto-compaction-retention as etcd 3.4 reads them: a bare number is hours in periodic
// mode and revisions in revision mode; otherwise a Go duration (which etcd also accepts in revision mode, taking
// its nanoseconds as the revision count); 0 turns auto-compaction off.
import { CompactionMode, HOUR_MS, type CompactionPolicy } from "../server/compactor.js";
import { parseDurationMs } from "./flags.js";

/** A bad compaction flag, worded as etcd's start-up error. */
export class CompactionFlagError extends Error {}

/** The policy the flags ask for, or undefined when auto-compaction is off. */
export function parseCompactionFlags(mode: string, retention: string): CompactionPolicy | undefined {
  if (mode !== CompactionMode.Periodic && mode !== CompactionMode.Revision) {
    throw new CompactionFlagError(
      `error verifying flags, unknown auto-compaction-mode ${JSON.stringify(mode)}. See 'etcd --help'.`,
    );
  }
  const text = retention.trim();
  if (text === "" || text === "0") return undefined;
  if (/^\d+$/.test(text))
    return { mode, retention: mode === CompactionMode.Revision ? Number(text) : Number(text) * HOUR_MS };
  const ms = parseDurationMs(text);
  if (ms === undefined)
    throw new CompactionFlagError(`error parsing CompactionRetention: time: invalid duration ${JSON.stringify(text)}`);
  if (ms === 0) return undefined;
  return { mode, retention: mode === CompactionMode.Revision ? Math.round(ms * 1e6) : ms };
}
