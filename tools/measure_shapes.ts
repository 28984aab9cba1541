/**
 * Issue 4's measurements on held-out shapes scenes, for the trained `shapes-tiny` model and for the
 * exact `shapesOracle`:
 * - mIoU of the conditional-information maps of colour words and of shape words against the object
 *   masks, with the paper's protocol (per-map min–max, best global threshold of 0.1…0.5) and at a
 *   fixed threshold of 0.4, beside the whole-image baseline;
 * - relation / attribute accuracy on the world's ARO export (true caption vs swapped caption),
 *   with the paper's orthogonal estimator and with the standard (log-likelihood ratio) one.
 *
 * Held-out scenes: `shapesWorld({ seed, split: "test" })`, disjoint from the training split by
 * construction. The oracle is built from these same test scenes (it is the exact model of that
 * finite set, the ceiling); shapes-tiny never saw them.
 *
 * Usage (from the repository root):
 *   npx -y deno@2.9.6 run -A tools/measure_shapes.ts [--count 40] [--samples 50] [--seed 1]
 *     [--model fixtures/models/shapes-tiny] [--out out/measure_shapes.json] [--oracle-only]
 *
 * Prints a markdown table and writes the JSON.
 */
import { parseArgs } from "node:util";
import { dirname, join } from "node:path";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { shapesOracle } from "../src/query/oracles.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { readAro } from "../src/datasets/aro.ts";
import { loadModel } from "../src/query/load-model.ts";
import type { Model } from "../src/query/model.ts";
import { localizationStudy } from "../src/studies/localization.ts";
import { shapesLocalizationRows } from "../src/studies/localization-rows.ts";
import { LOCALIZATION_METHODS } from "../src/studies/localization-result.ts";
import { relationStudy } from "../src/studies/relations.ts";
import type { EstimatorName } from "../src/estimators/options.ts";
import { supportsAttention } from "../src/attention/capability.ts";
import { wordAttention } from "../src/attention/word-attention.ts";

const { values: args } = parseArgs({
  options: {
    count: { type: "string", default: "40" },
    samples: { type: "string", default: "50" },
    seed: { type: "string", default: "1" },
    model: { type: "string", default: "fixtures/models/shapes-tiny" },
    out: { type: "string", default: "out/measure_shapes.json" },
    "oracle-only": { type: "boolean", default: false },
  },
});
const count = Number(args.count), samples = Number(args.samples), seed = Number(args.seed);

const world = shapesWorld({ seed, count, split: "test" });
const dir = await Deno.makeTempDir({ prefix: "measure-shapes-" });
await exportShapesDataset(world, dir);
const aro = [
  ...await readAro(join(dir, "aro_relation.json")),
  ...await readAro(join(dir, "aro_attribution.json")),
];

interface Measured {
  model: string;
  seconds: number;
  localization: Record<string, {
    mIoU: number;
    threshold: number;
    mIoUFixed: number;
    se: number;
    n: number;
    wholeImage: number;
    attention: number;
    attentionFixed: number;
    sampledAttention: number;
    sampledAttentionFixed: number;
    combined: number;
    combinedFixed: number;
    bad: number;
  }>;
  relations: Record<string, {
    accuracy: number;
    se: number;
    n: number;
    relation: number;
    attribution: number;
    bad: number;
  }>;
}

async function measure(model: Model, pixels: boolean): Promise<Measured> {
  const started = performance.now();
  const localization: Measured["localization"] = {};
  for (const words of ["colour", "shape"] as const) {
    const result = await localizationStudy(model, shapesLocalizationRows(world, { words }), {
      samples,
      seed: 0,
      attention: { supportsAttention, wordAttention },
      methods: [...LOCALIZATION_METHODS],
    });
    const info = result.method("information");
    const attention = result.method("attention");
    const sampled = result.method("attention-at-sampled-noise");
    const combined = result.method("infodiff-combined");
    localization[words] = {
      mIoU: info.mIoU,
      threshold: info.threshold,
      mIoUFixed: info.mIoUFixed,
      se: info.se,
      n: info.n,
      wholeImage: result.method("whole-image").mIoU,
      attention: attention.mIoU,
      attentionFixed: attention.mIoUFixed,
      sampledAttention: sampled.mIoU,
      sampledAttentionFixed: sampled.mIoUFixed,
      combined: combined.mIoU,
      combinedFixed: combined.mIoUFixed,
      bad: result.failures.length,
    };
    console.error(`${model.name}: ${words} words done`);
  }
  const relationResults: Measured["relations"] = {};
  for (const estimator of ["orthogonal", "standard"] as EstimatorName[]) {
    const result = await relationStudy(model, aro, {
      samples,
      seed: 0,
      estimator,
      loadImage: pixels ? "pixels" : undefined,
    });
    const kind = (name: string) => result.byKind.find((k) => k.name === name)?.accuracy ?? NaN;
    relationResults[estimator] = {
      accuracy: result.accuracy.accuracy,
      se: result.accuracy.se,
      n: result.accuracy.n,
      relation: kind("relation"),
      attribution: kind("attribution"),
      bad: result.failures.length,
    };
    console.error(`${model.name}: relations (${estimator}) done`);
  }
  return {
    model: model.name,
    seconds: (performance.now() - started) / 1000,
    localization,
    relations: relationResults,
  };
}

const measured: Measured[] = [await measure(shapesOracle(world), true)];
if (!args["oracle-only"]) {
  const model = await loadModel(args.model!, { device: "cpu" });
  try {
    measured.push(await measure(model, false));
  } finally {
    await model.dispose();
  }
}

const f = (v: number) => Number.isFinite(v) ? v.toFixed(3) : "—";
const pct = (v: number, se?: number) =>
  Number.isFinite(v)
    ? `${(100 * v).toFixed(1)} %${se !== undefined ? ` ± ${(100 * se).toFixed(1)}` : ""}`
    : "—";
const lines = [
  `Held-out test scenes: ${count} (seed ${seed}), ${samples} (α, ε) draws per row/item; ` +
  `${aro.length} ARO items (relation + attribution).`,
  "",
  "| model | colour mIoU (best t) | colour mIoU @0.4 | shape mIoU (best t) | shape mIoU @0.4 | whole-image mIoU | relation+attribute acc. (orthogonal) | (standard) |",
  "|---|---|---|---|---|---|---|---|",
  ...measured.map((m) => {
    const c = m.localization.colour, s = m.localization.shape;
    const o = m.relations.orthogonal, st = m.relations.standard;
    return `| ${m.model} | ${f(c.mIoU)} ± ${f(c.se)} (t=${c.threshold}) | ${f(c.mIoUFixed)} | ` +
      `${f(s.mIoU)} ± ${f(s.se)} (t=${s.threshold}) | ${f(s.mIoUFixed)} | ${f(c.wholeImage)} | ` +
      `${pct(o.accuracy, o.se)} (rel ${pct(o.relation)}, attr ${pct(o.attribution)}) | ` +
      `${pct(st.accuracy, st.se)} (rel ${pct(st.relation)}, attr ${pct(st.attribution)}) |`;
  }),
];
lines.push(
  "",
  "| model | words | information (best t / @0.4) | attention along the DDIM regeneration (best t / @0.4) | attention at sampled noise = paper's Attention+Information (best t / @0.4) | infodiff-combined (best t / @0.4) | whole image |",
  "|---|---|---|---|---|---|---|",
  ...measured.flatMap((m) =>
    Object.entries(m.localization).map(([words, l]) =>
      `| ${m.model} | ${words} | ${f(l.mIoU)} / ${f(l.mIoUFixed)} | ${f(l.attention)} / ` +
      `${f(l.attentionFixed)} | ${f(l.sampledAttention)} / ${f(l.sampledAttentionFixed)} | ` +
      `${f(l.combined)} / ${f(l.combinedFixed)} | ${f(l.wholeImage)} |`
    )
  ),
);
console.log(lines.join("\n"));
await Deno.mkdir(dirname(args.out!), { recursive: true });
await Deno.writeTextFile(
  args.out!,
  JSON.stringify({ count, samples, seed, items: aro.length, measured }, null, 2),
);
console.error(`wrote ${args.out}`);
