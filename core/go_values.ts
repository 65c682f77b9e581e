// Go's syntax for values etcd reads from flags, config files and token options: strconv.ParseBool and
// time.ParseDuration. One parser each, so every flag and option agrees with etcd on what is valid.

const GO_TRUE = new Set(["1", "t", "T", "TRUE", "true", "True"]);
const GO_FALSE = new Set(["0", "f", "F", "FALSE", "false", "False"]);

/** strconv.ParseBool: true/false, or undefined for text Go refuses. */
export function parseGoBool(text: string): boolean | undefined {
  if (GO_TRUE.has(text)) return true;
  if (GO_FALSE.has(text)) return false;
  return undefined;
}

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};
const DURATION_RE = /^[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+$/;
const PART_RE = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)/g;

/**
 * time.ParseDuration ("300ms", "1.5h", "2h45m", "-1s", "0"), in milliseconds; undefined for text Go refuses
 * (including "" and a number without a unit other than 0).
 */
export function parseGoDurationMs(text: string): number | undefined {
  if (text === "0" || text === "+0" || text === "-0") return 0;
  if (!DURATION_RE.test(text)) return undefined;
  let total = 0;
  for (const m of text.matchAll(PART_RE)) total += Number(m[1]) * (UNIT_MS[m[2] as string] as number);
  return text.startsWith("-") ? -total : total;
}
