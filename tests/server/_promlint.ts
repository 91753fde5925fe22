/**
 * Prometheus' metric naming rules, as `promtool check metrics` applies them
 * (its linter, promlint), restated so that a test can hold `/metrics` to them
 * on machines without promtool. Each problem is one line `<name> <rule>`.
 */

/** Unit abbreviations promlint refuses as a name part (`_ms_`, `_s`, ...). */
const ABBREVIATED_UNITS = new Set([
  "s",
  "ms",
  "us",
  "ns",
  "sec",
  "b",
  "kb",
  "mb",
  "gb",
  "tb",
  "pb",
  "m",
  "h",
  "d",
]);
const BASE_UNITS = ["seconds", "bytes", "meters", "grams", "joules", "volts"];
const UNIT_PREFIXES = [
  "pico",
  "nano",
  "micro",
  "milli",
  "centi",
  "deci",
  "kilo",
  "kibi",
  "mega",
  "mebi",
  "giga",
  "gibi",
  "tera",
  "tebi",
];

/** Checks a text exposition; returns every problem found (none: `[]`). */
export function lintMetrics(text: string): string[] {
  const problems: string[] = [];
  const help = new Set<string>();
  const types = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (m !== null) {
      if (m[1] === "HELP") help.add(m[2]);
      else types.set(m[2], m[3]);
      continue;
    }
    if (line === "" || line.startsWith("#")) continue;
    const name = /^[^{ ]+/.exec(line)![0];
    const family = [name, name.replace(/_(bucket|sum|count)$/, "")]
      .find((f) => types.has(f));
    if (family === undefined) problems.push(`${name} has no # TYPE`);
  }
  for (const [name, type] of types) {
    const p = (rule: string) => problems.push(`${name} ${rule}`);
    if (!help.has(name)) p("has no # HELP");
    if (!/^[a-z_][a-z0-9_]*$/.test(name)) p("is not snake_case");
    if (type === "counter" && !name.endsWith("_total")) {
      p('is a counter without the "_total" suffix');
    }
    if (type !== "counter" && name.endsWith("_total")) {
      p(`is a ${type} with the "_total" suffix`);
    }
    if (type !== "histogram" && name.endsWith("_bucket")) {
      p('is not a histogram but ends in "_bucket"');
    }
    if (type !== "histogram" && type !== "summary" && name.endsWith("_count")) {
      p('is not a histogram or summary but ends in "_count"');
    }
    for (const part of name.split("_")) {
      if (ABBREVIATED_UNITS.has(part)) {
        p(`contains the abbreviated unit "${part}"`);
      }
    }
    for (const unit of BASE_UNITS) {
      for (const prefix of UNIT_PREFIXES) {
        const u = prefix + unit;
        if (name.includes(`_${u}_`) || name.endsWith(`_${u}`)) {
          p(`uses "${u}" instead of the base unit "${unit}"`);
        }
      }
    }
  }
  return problems;
}
