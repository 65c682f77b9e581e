// Tiny inline-SVG charts for report.html: horizontal bars (with an optional marker line) and line charts
// (optionally log-scaled x). No scripts, no network: the report is one self-contained file.

const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#9e9e9e"];

export function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

const fmt = (v: number): string => (v >= 100 ? v.toFixed(0) : v >= 10 ? v.toFixed(1) : v.toFixed(2));

export interface Bar {
  readonly label: string;
  readonly value: number;
  readonly group?: number;
}

/** barChart draws one horizontal bar per item, value printed at its end, in `unit`. */
export function barChart(title: string, bars: readonly Bar[], unit: string): string {
  const w = 760,
    rowH = 20,
    left = 330,
    top = 28;
  const h = top + bars.length * rowH + 10;
  const max = Math.max(1e-9, ...bars.map((b) => b.value));
  const rows = bars.map((b, i) => {
    const y = top + i * rowH;
    const bw = Math.max(1, ((w - left - 90) * b.value) / max);
    return (
      `<text x="${left - 6}" y="${y + 14}" text-anchor="end" font-size="12">${esc(b.label)}</text>` +
      `<rect x="${left}" y="${y + 3}" width="${bw.toFixed(1)}" height="${rowH - 6}" fill="${COLORS[(b.group ?? 0) % COLORS.length]}"/>` +
      `<text x="${(left + bw + 4).toFixed(1)}" y="${y + 14}" font-size="12">${fmt(b.value)} ${esc(unit)}</text>`
    );
  });
  return (
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">` +
    `<text x="4" y="16" font-size="14" font-weight="bold">${esc(title)}</text>${rows.join("")}</svg>`
  );
}

export interface Series {
  readonly name: string;
  readonly points: readonly (readonly [number, number])[];
}

/** lineChart draws series over x (log10 when xLog) with axis ticks and a legend. */
export function lineChart(
  title: string,
  series: readonly Series[],
  axes: { x: string; y: string; xLog?: boolean },
): string {
  const w = 760,
    h = 320,
    l = 60,
    r = 190,
    t = 28,
    b = 40;
  const all = series.flatMap((s) => s.points);
  if (all.length === 0) return `<p>${esc(title)}: no data</p>`;
  const tx = (x: number): number => (axes.xLog === true ? Math.log10(Math.max(x, 0.001)) : x);
  const xs = all.map(([x]) => tx(x)),
    ys = all.map(([, y]) => y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs) === Math.min(...xs) ? Math.min(...xs) + 1 : Math.max(...xs)];
  const [y0, y1] = [Math.min(0, ...ys), Math.max(...ys) === 0 ? 1 : Math.max(...ys)];
  const px = (x: number): number => l + ((tx(x) - x0) / (x1 - x0)) * (w - l - r);
  const py = (y: number): number => h - b - ((y - y0) / (y1 - y0)) * (h - t - b);
  const lines = series.map((s, i) => {
    const d = s.points.map(([x, y], k) => `${k === 0 ? "M" : "L"}${px(x).toFixed(1)},${py(y).toFixed(1)}`).join(" ");
    const c = COLORS[i % COLORS.length];
    return (
      `<path d="${d}" fill="none" stroke="${c}" stroke-width="1.5"/>` +
      `<rect x="${w - r + 10}" y="${t + i * 16}" width="10" height="10" fill="${c}"/>` +
      `<text x="${w - r + 24}" y="${t + i * 16 + 9}" font-size="11">${esc(s.name)}</text>`
    );
  });
  const ticks: string[] = [];
  for (let k = 0; k <= 4; k++) {
    const xv = x0 + ((x1 - x0) * k) / 4,
      yv = y0 + ((y1 - y0) * k) / 4;
    const xl = axes.xLog === true ? 10 ** xv : xv;
    const xp = l + ((xv - x0) / (x1 - x0)) * (w - l - r);
    ticks.push(`<text x="${xp.toFixed(1)}" y="${h - b + 14}" font-size="10" text-anchor="middle">${fmt(xl)}</text>`);
    ticks.push(`<text x="${l - 4}" y="${py(yv).toFixed(1)}" font-size="10" text-anchor="end">${fmt(yv)}</text>`);
  }
  return (
    `<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="${w}" height="${h}" role="img" aria-label="${esc(title)}">` +
    `<text x="4" y="16" font-size="14" font-weight="bold">${esc(title)}</text>` +
    `<line x1="${l}" y1="${h - b}" x2="${w - r}" y2="${h - b}" stroke="#888"/><line x1="${l}" y1="${t}" x2="${l}" y2="${h - b}" stroke="#888"/>` +
    `${ticks.join("")}<text x="${(l + w - r) / 2}" y="${h - 6}" font-size="11" text-anchor="middle">${esc(axes.x)}</text>` +
    `<text x="12" y="${(t + h - b) / 2}" font-size="11" transform="rotate(-90 12 ${(t + h - b) / 2})" text-anchor="middle">${esc(axes.y)}</text>` +
    `${lines.join("")}</svg>`
  );
}
