/**
 * Dependency-free SVG charts for the results files: grouped bars (log
 * scale by default) and multi-series lines.
 *
 * @module
 */
import { fmtRate } from "./_report.ts";

/** Escapes text for SVG. */
export function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;");
}

/** Bar colours by series, colour-blind-safe (Okabe-Ito). */
export const PALETTE = [
  "#0072B2",
  "#E69F00",
  "#009E73",
  "#CC79A7",
  "#56B4E9",
  "#D55E00",
  "#F0E442",
  "#000000",
];

/** Options of {@link groupedBarSvg}. */
export interface BarChartOptions {
  title: string;
  subtitle?: string;
  groups: string[];
  series: string[];
  /** values[group][series]; NaN or <= 0 draws no bar. */
  values: number[][];
  yLabel: string;
  log?: boolean;
}

/** A grouped bar chart as SVG text (log scale by default). */
export function groupedBarSvg(o: BarChartOptions): string {
  const log = o.log ?? true;
  const all = o.values.flat().filter((v) => Number.isFinite(v) && v > 0);
  const maxV = all.length ? Math.max(...all) : 1;
  const minV = all.length ? Math.min(...all) : 1;
  const lo = log ? Math.pow(10, Math.floor(Math.log10(minV))) : 0;
  const hi = log ? Math.pow(10, Math.ceil(Math.log10(maxV))) : niceCeil(maxV);
  const groupW = Math.max(60, o.series.length * 16 + 24);
  const left = 80, right = 20, top = 60, bottom = 90;
  const plotH = 320;
  const width = left + right + groupW * o.groups.length;
  const height = top + plotH + bottom;
  const y = (v: number) =>
    log
      ? top + plotH - (Math.log10(v / lo) / Math.log10(hi / lo)) * plotH
      : top + plotH - (v / hi) * plotH;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="16" font-weight="bold">${
      xmlEscape(o.title)
    }</text>`,
  );
  if (o.subtitle) {
    out.push(
      `<text x="${left}" y="40" fill="#555">${xmlEscape(o.subtitle)}</text>`,
    );
  }
  // Grid and y axis labels.
  const ticks: number[] = [];
  if (log) {
    for (let t = lo; t <= hi * 1.0001; t *= 10) ticks.push(t);
  } else {
    for (let i = 0; i <= 5; i++) ticks.push((hi / 5) * i);
  }
  for (const t of ticks) {
    const ty = y(t || (log ? lo : 0)).toFixed(1);
    out.push(
      `<line x1="${left}" x2="${
        width - right
      }" y1="${ty}" y2="${ty}" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${ty}" text-anchor="end" dy="4">${
        fmtRate(t)
      }</text>`,
    );
  }
  out.push(
    `<text transform="translate(18 ${
      top + plotH / 2
    }) rotate(-90)" text-anchor="middle">${xmlEscape(o.yLabel)}${
      log ? " (log scale)" : ""
    }</text>`,
  );
  const barW = (groupW - 24) / o.series.length;
  o.groups.forEach((g, gi) => {
    const gx = left + gi * groupW + 12;
    o.series.forEach((s, si) => {
      const v = o.values[gi]?.[si];
      if (!(Number.isFinite(v) && v > 0)) return;
      const by = y(Math.max(v, lo));
      out.push(
        `<rect x="${(gx + si * barW).toFixed(1)}" y="${by.toFixed(1)}" width="${
          (barW - 2).toFixed(1)
        }" height="${(top + plotH - by).toFixed(1)}" fill="${
          PALETTE[si % PALETTE.length]
        }"><title>${xmlEscape(`${s} ${g}: ${fmtRate(v)}`)}</title></rect>`,
      );
    });
    const lx = gx + (groupW - 24) / 2;
    out.push(
      `<text x="${lx}" y="${
        top + plotH + 14
      }" text-anchor="end" transform="rotate(-35 ${lx} ${top + plotH + 14})">${
        xmlEscape(g)
      }</text>`,
    );
  });
  out.push(
    `<line x1="${left}" x2="${left}" y1="${top}" y2="${
      top + plotH
    }" stroke="#333"/>`,
    `<line x1="${left}" x2="${width - right}" y1="${top + plotH}" y2="${
      top + plotH
    }" stroke="#333"/>`,
  );
  // Legend.
  let lx = left;
  const ly = height - 16;
  o.series.forEach((s, si) => {
    out.push(
      `<rect x="${lx}" y="${ly - 10}" width="12" height="12" fill="${
        PALETTE[si % PALETTE.length]
      }"/>`,
      `<text x="${lx + 16}" y="${ly}">${xmlEscape(s)}</text>`,
    );
    lx += 30 + s.length * 7;
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/** Options of {@link lineChartSvg}. */
export interface LineChartOptions {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  /** Each series: name and [x, y] points. */
  series: { name: string; points: [number, number][] }[];
}

/** A simple multi-series line chart as SVG text (linear axes). */
export function lineChartSvg(o: LineChartOptions): string {
  const pts = o.series.flatMap((s) => s.points);
  const maxX = niceCeil(Math.max(1e-9, ...pts.map((p) => p[0])));
  const maxY = niceCeil(Math.max(1e-9, ...pts.map((p) => p[1])));
  const left = 70, right = 20, top = 60;
  const plotW = 640, plotH = 300;
  const width = left + plotW + right;
  const legend = legendRows(o.series.map((s) => s.name), left, width - right);
  const bottom = 52 + 18 * legend.rows;
  const height = top + plotH + bottom;
  const x = (v: number) => left + (v / maxX) * plotW;
  const y = (v: number) => top + plotH - (v / maxY) * plotH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="16" font-weight="bold">${
      xmlEscape(o.title)
    }</text>`,
  ];
  if (o.subtitle) {
    out.push(
      `<text x="${left}" y="40" fill="#555">${xmlEscape(o.subtitle)}</text>`,
    );
  }
  for (let i = 0; i <= 5; i++) {
    const vy = (maxY / 5) * i, vx = (maxX / 5) * i;
    out.push(
      `<line x1="${left}" x2="${left + plotW}" y1="${y(vy)}" y2="${
        y(vy)
      }" stroke="#ddd"/>`,
      `<text x="${left - 6}" y="${y(vy)}" dy="4" text-anchor="end">${+vy
        .toPrecision(3)}</text>`,
      `<text x="${x(vx)}" y="${top + plotH + 16}" text-anchor="middle">${+vx
        .toPrecision(3)}</text>`,
    );
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${
      top + plotH + 36
    }" text-anchor="middle">${xmlEscape(o.xLabel)}</text>`,
    `<text transform="translate(18 ${
      top + plotH / 2
    }) rotate(-90)" text-anchor="middle">${xmlEscape(o.yLabel)}</text>`,
    `<rect x="${left}" y="${top}" width="${plotW}" height="${plotH}" fill="none" stroke="#333"/>`,
  );
  o.series.forEach((s, si) => {
    if (s.points.length === 0) return;
    const d = s.points.map((p, i) =>
      `${i ? "L" : "M"}${x(p[0]).toFixed(1)} ${y(p[1]).toFixed(1)}`
    ).join(" ");
    out.push(
      `<path d="${d}" fill="none" stroke="${
        PALETTE[si % PALETTE.length]
      }" stroke-width="1.5"/>`,
    );
  });
  o.series.forEach((s, si) => {
    const [lx, row] = legend.at[si];
    const ly = top + plotH + 44 + 18 * row;
    out.push(
      `<rect x="${lx}" y="${ly}" width="12" height="12" fill="${
        PALETTE[si % PALETTE.length]
      }"/>`,
      `<text x="${lx + 16}" y="${ly + 10}">${xmlEscape(s.name)}</text>`,
    );
  });
  out.push(`</svg>`);
  return out.join("\n") + "\n";
}

/**
 * Where each legend entry goes ([x, row]): left to right from `left`, on a
 * new row when an entry would pass `right` (about 7 px per character).
 */
function legendRows(
  names: string[],
  left: number,
  right: number,
): { at: [number, number][]; rows: number } {
  const at: [number, number][] = [];
  let lx = left, row = 0;
  for (const name of names) {
    const w = 30 + name.length * 7;
    if (lx > left && lx + w > right) {
      lx = left;
      row++;
    }
    at.push([lx, row]);
    lx += w;
  }
  return { at, rows: row + 1 };
}

function niceCeil(v: number): number {
  const p = Math.pow(10, Math.floor(Math.log10(v)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}
