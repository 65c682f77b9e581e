// Progress bars for long phases (preload, replay, per target), on stderr through cli-progress. When stderr is
// not a TTY (CI) a line is printed every 5 s instead of redrawing, so logs stay readable.
import cliProgress from "cli-progress";

export class Progress {
  private readonly bar: cliProgress.SingleBar | undefined;

  constructor(label: string, total: number) {
    if (process.env["ETCD_TS_BENCH_QUIET"] === "1" || total === 0) return;
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label.padEnd(28)} [{bar}] {percentage}% {value}/{total} eta {eta}s`,
        stream: process.stderr,
        noTTYOutput: true,
        notTTYSchedule: 5_000,
        hideCursor: false,
        etaBuffer: 200,
      },
      cliProgress.Presets.legacy,
    );
    this.bar.start(total, 0);
  }

  increment(): void {
    this.bar?.increment();
  }

  stop(): void {
    this.bar?.stop();
  }
}
