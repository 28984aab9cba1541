/**
 * The architecture check behind `deno task check` (ARCHITECTURE.md): no file import cycle (type-only
 * imports included), no import from a lower layer to a higher one, native and heavy packages only
 * where they belong, and an entry point that loads no native code. Reads the real module graph
 * from `deno info --json`.
 *
 * Usage: `deno run -A tools/architecture.ts [--json]`; exits 1 on any violation.
 *
 * @module
 */

/** The layers from the bottom up; a file may import its own layer or lower ones. */
export const LAYERS: readonly { readonly name: string; readonly paths: readonly string[] }[] = [
  { name: "base", paths: ["src/errors.ts", "src/warnings.ts", "src/jupyter.ts", "src/version.ts"] },
  { name: "numerics", paths: ["src/numerics/"] },
  { name: "images", paths: ["src/images/"] },
  { name: "text", paths: ["src/text/"] },
  { name: "datasets", paths: ["src/datasets/"] },
  { name: "models", paths: ["src/models/denoiser.ts", "src/models/"] },
  { name: "models/sd", paths: ["src/models/sd/"] },
  { name: "models/hub", paths: ["src/models/hub/"] },
  { name: "models/onnx", paths: ["src/models/onnx/"] },
  { name: "estimators", paths: ["src/estimators/"] },
  { name: "generation", paths: ["src/generation/"] },
  { name: "attention", paths: ["src/attention/"] },
  { name: "query", paths: ["src/query/"] },
  { name: "studies", paths: ["src/studies/"] },
  { name: "plots", paths: ["src/plots/"] },
  { name: "cli", paths: ["src/cli/"] },
  { name: "entry", paths: ["mod.ts"] },
];

/** Packages that only the named folders may import at run time (type-only imports are free). */
export const PACKAGE_HOMES: Readonly<Record<string, readonly string[]>> = {
  "onnxruntime-node": ["src/models/onnx/"],
  "onnxruntime-common": ["src/models/onnx/"],
  "onnx-proto": ["src/models/onnx/"],
  "@huggingface/hub": ["src/models/hub/"],
  "csv-parse": ["src/datasets/coco-it.ts"],
  "sharp": ["src/images/sharp.ts"],
  "@observablehq/plot": ["src/plots/"],
  "linkedom": ["src/plots/"],
};

/** Packages with native code that importing an entry point must not load. */
export const NATIVE_PACKAGES: readonly string[] = ["onnxruntime-node", "sharp"];

/** One import: from a repository file to a file or an npm package. */
export interface Edge {
  /** the importing file, repository-relative */
  readonly from: string;
  /** the imported file (repository-relative) or `npm:<package>` */
  readonly to: string;
  /** `import type` (erased at run time) */
  readonly typeOnly: boolean;
  /** `import()` at run time */
  readonly dynamic: boolean;
}

/** What the check found. */
export interface ArchitectureReport {
  /** files in the graph */
  readonly files: number;
  /** import cycles, each as its files */
  readonly cycles: readonly (readonly string[])[];
  /** imports from a lower layer to a higher one */
  readonly upward: readonly string[];
  /** packages imported outside their home */
  readonly misplacedPackages: readonly string[];
  /** files outside every layer */
  readonly unlayered: readonly string[];
  /** per entry point: files and bytes loaded statically, and native packages reached */
  readonly entries: Readonly<Record<string, { files: number; bytes: number; native: string[] }>>;
}

/** The layer index of a repository file, or -1 (tests, tools and other files outside src/). */
export function layerOf(file: string): number {
  let best = -1, bestLength = -1;
  LAYERS.forEach((layer, index) => {
    for (const path of layer.paths) {
      const matches = path.endsWith("/") ? file.startsWith(path) : file === path;
      if (matches && path.length > bestLength) [best, bestLength] = [index, path.length];
    }
  });
  return best;
}

/**
 * Checks a module graph against the layer rules.
 *
 * @example
 * ```ts
 * import { checkArchitecture } from "./architecture.ts";
 * const report = checkArchitecture([
 *   { from: "src/numerics/a.ts", to: "src/query/q.ts", typeOnly: true, dynamic: false },
 *   { from: "src/query/q.ts", to: "src/numerics/a.ts", typeOnly: false, dynamic: false },
 * ], {}, []);
 * console.assert(report.cycles.length === 1 && report.upward.length === 1);
 * ```
 */
export function checkArchitecture(
  edges: readonly Edge[],
  sizes: Readonly<Record<string, number>>,
  entryPoints: readonly string[],
): ArchitectureReport {
  const files = new Set<string>();
  for (const e of edges) {
    files.add(e.from);
    if (!e.to.startsWith("npm:")) files.add(e.to);
  }
  const upward: string[] = [], misplacedPackages: string[] = [];
  for (const e of edges) {
    if (e.to.startsWith("npm:")) {
      const homes = PACKAGE_HOMES[e.to.slice(4)];
      const inSource = e.from.startsWith("src/") || e.from === "mod.ts";
      if (homes && inSource && !e.typeOnly && !homes.some((h) => e.from.startsWith(h))) {
        misplacedPackages.push(
          `${e.from} imports ${e.to.slice(4)} (allowed in ${homes.join(", ")})`,
        );
      }
      continue;
    }
    const from = layerOf(e.from), to = layerOf(e.to);
    if (from >= 0 && to > from) {
      upward.push(`${e.from} (${LAYERS[from].name}) imports ${e.to} (${LAYERS[to].name})`);
    }
  }
  const unlayered = [...files].filter((f) => f.startsWith("src/") && layerOf(f) < 0);
  const entries: Record<string, { files: number; bytes: number; native: string[] }> = {};
  for (const entry of entryPoints) {
    const reached = staticClosure(edges, entry);
    const local = [...reached].filter((f) => !f.startsWith("npm:"));
    entries[entry] = {
      files: local.length,
      bytes: local.reduce((sum, f) => sum + (sizes[f] ?? 0), 0),
      native: NATIVE_PACKAGES.filter((p) => reached.has(`npm:${p}`)),
    };
  }
  return {
    files: files.size,
    cycles: findCycles(edges),
    upward,
    misplacedPackages,
    unlayered,
    entries,
  };
}

/** Files and packages loaded at run time when `entry` is imported (no type-only or dynamic edges). */
function staticClosure(edges: readonly Edge[], entry: string): Set<string> {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    if (e.typeOnly || e.dynamic) continue;
    out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  }
  const seen = new Set<string>([entry]);
  const stack = [entry];
  while (stack.length) {
    for (const next of out.get(stack.pop()!) ?? []) {
      if (!seen.has(next)) {
        seen.add(next);
        stack.push(next);
      }
    }
  }
  return seen;
}

/** Strongly connected components of more than one file, or a file importing itself (Tarjan). */
function findCycles(edges: readonly Edge[]): string[][] {
  const out = new Map<string, string[]>();
  for (const e of edges) {
    if (e.to.startsWith("npm:")) continue;
    out.set(e.from, [...(out.get(e.from) ?? []), e.to]);
  }
  const nodes = new Set([...out.keys(), ...[...out.values()].flat()]);
  const index = new Map<string, number>(), low = new Map<string, number>();
  const onStack = new Set<string>(), stack: string[] = [], cycles: string[][] = [];
  let counter = 0;
  const visit = (v: string) => {
    index.set(v, counter);
    low.set(v, counter++);
    stack.push(v);
    onStack.add(v);
    for (const w of out.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      const component: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        component.push(w);
      } while (w !== v);
      if (component.length > 1 || (out.get(v) ?? []).includes(v)) cycles.push(component.sort());
    }
  };
  for (const v of nodes) if (!index.has(v)) visit(v);
  return cycles;
}

/** The repository's module graph from `deno info --json`, for every file under src/ and mod.ts. */
export async function repositoryGraph(
  root: string,
): Promise<{ edges: Edge[]; sizes: Record<string, number> }> {
  const sources = ["mod.ts", ...(await listTs(`${root}/src`, "src"))];
  const entry = await Deno.makeTempFile({ dir: root, prefix: ".architecture-", suffix: ".ts" });
  try {
    await Deno.writeTextFile(entry, sources.map((f) => `import "./${f}";\n`).join(""));
    const output = await new Deno.Command(Deno.execPath(), {
      args: ["info", "--json", entry],
      cwd: root,
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (!output.success) throw new Error(new TextDecoder().decode(output.stderr));
    return parseDenoInfo(JSON.parse(new TextDecoder().decode(output.stdout)), root, entry);
  } finally {
    await Deno.remove(entry);
  }
}

interface DenoInfoModule {
  readonly specifier: string;
  readonly size?: number;
  readonly dependencies?: readonly {
    readonly code?: { readonly specifier: string };
    readonly type?: { readonly specifier: string };
    readonly isDynamic?: boolean;
  }[];
}

function parseDenoInfo(
  info: { modules: readonly DenoInfoModule[] },
  root: string,
  entry: string,
): { edges: Edge[]; sizes: Record<string, number> } {
  const prefix = `file://${root}/`;
  const local = (specifier: string) =>
    specifier.startsWith(prefix) ? specifier.slice(prefix.length) : undefined;
  const target = (specifier: string) => {
    if (specifier.startsWith("npm:")) {
      const name = specifier.slice(4).replace(/^\//, "");
      return `npm:${name.replace(/^(@[^/]+\/[^@/]+|[^@/]+)@.*$/, "$1")}`;
    }
    return local(specifier);
  };
  const edges: Edge[] = [], sizes: Record<string, number> = {};
  for (const module of info.modules) {
    const from = local(module.specifier);
    if (!from || `${root}/${from}` === entry) continue;
    sizes[from] = module.size ?? 0;
    for (const dep of module.dependencies ?? []) {
      const to = target((dep.code ?? dep.type)?.specifier ?? "");
      if (to) edges.push({ from, to, typeOnly: !dep.code, dynamic: dep.isDynamic === true });
    }
  }
  return { edges, sizes };
}

async function listTs(dir: string, relative: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const path = `${relative}/${entry.name}`;
    if (entry.isDirectory) out.push(...await listTs(`${dir}/${entry.name}`, path));
    else if (entry.name.endsWith(".ts")) out.push(path);
  }
  return out.sort();
}

/** The entry points whose static weight is reported (and which must load no native package). */
export const LIGHT_ENTRY_POINTS: readonly string[] = [
  "mod.ts",
  "src/studies/mod.ts",
  "src/plots/mod.ts",
  "src/datasets/mod.ts",
  "src/cli/main.ts",
];

if (import.meta.main) {
  const root = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
  const { edges, sizes } = await repositoryGraph(root);
  const report = checkArchitecture(edges, sizes, LIGHT_ENTRY_POINTS);
  const heavyEntries = Object.entries(report.entries).filter(([, e]) => e.native.length > 0);
  if (Deno.args.includes("--json")) console.log(JSON.stringify(report, null, 2));
  const problems = [
    ...report.cycles.map((c) => `import cycle: ${c.join(" → ")}`),
    ...report.upward.map((u) => `upward import: ${u}`),
    ...report.misplacedPackages.map((m) => `package outside its home: ${m}`),
    ...report.unlayered.map((f) => `file in no layer: ${f}`),
    ...heavyEntries.map(([name, e]) =>
      `${name} loads native code at import: ${e.native.join(", ")}`
    ),
  ];
  for (const problem of problems) console.error(problem);
  const weights = Object.entries(report.entries)
    .map(([name, e]) => `${name} ${e.files} files ${(e.bytes / 1024).toFixed(0)} KiB`).join("; ");
  console.log(
    `architecture: ${report.files} files, ${report.cycles.length} cycles, ` +
      `${report.upward.length} upward imports, ${report.misplacedPackages.length} misplaced ` +
      `packages; static weight: ${weights}`,
  );
  if (problems.length > 0) Deno.exit(1);
}
