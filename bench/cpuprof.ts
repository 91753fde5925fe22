/**
 * Summarises a V8 `.cpuprofile` (from `deno run --cpu-prof`): self time and
 * total (inclusive) time per function, hottest first.
 *
 *     deno run -A --unstable-kv --cpu-prof --cpu-prof-dir=bench/out/prof \
 *       bench/embedded.ts --stores shale --n 200000 --no-write
 *     deno run -A bench/cpuprof.ts bench/out/prof/*.cpuprofile --top 30
 *
 * @module
 */
import { parseArgs } from "node:util";

interface ProfileNode {
  id: number;
  callFrame: {
    functionName: string;
    url: string;
    lineNumber: number;
  };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const { values: args, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: { top: { type: "string", default: "25" } },
});
const top = Number(args.top);

for (const file of positionals) {
  const p = JSON.parse(await Deno.readTextFile(file)) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const label = (n: ProfileNode) => {
    const f = n.callFrame;
    const url = f.url.replace(
      /^.*\/(engine|bench|server|node_modules)\//,
      "$1/",
    )
      .replace(/^file:\/\/.*\//, "");
    return `${f.functionName || "(anonymous)"} ${url}${
      url ? ":" + (f.lineNumber + 1) : ""
    }`;
  };
  const self = new Map<string, number>();
  const total = new Map<string, number>();
  let all = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    all += dt;
    const leaf = byId.get(p.samples[i])!;
    const ls = label(leaf);
    self.set(ls, (self.get(ls) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined;) {
      const l = label(byId.get(id)!);
      if (!seen.has(l)) {
        seen.add(l);
        total.set(l, (total.get(l) ?? 0) + dt);
      }
      id = parent.get(id);
    }
  }
  const pct = (v: number) => ((100 * v) / all).toFixed(1).padStart(5) + "%";
  console.log(`\n${file}: ${(all / 1e6).toFixed(2)} s sampled`);
  console.log("self%  total%  function");
  for (
    const [l, v] of [...self].sort((a, b) => b[1] - a[1]).slice(0, top)
  ) {
    console.log(`${pct(v)} ${pct(total.get(l) ?? 0)}  ${l}`);
  }
  console.log("\nhighest inclusive time (engine and bench frames only)");
  for (
    const [l, v] of [...total].filter(([l]) => /engine\/|bench\//.test(l))
      .sort((a, b) => b[1] - a[1]).slice(0, top)
  ) {
    console.log(`${pct(v)}  ${l}`);
  }
}
