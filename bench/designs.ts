/**
 * Benchmark: variance per model call of every draw design (issue 15), as the variance of the
 * estimate over seeds at equal draws relative to the i.i.d. scheme, and — where the exact value
 * is known (the mixture oracles, standard estimator) — its bias in SE and the coverage of ±2·SE
 * and of the reported (skew-corrected, Student-t) interval. Also run on its own:
 * `deno run -A bench/designs.ts [--seeds 400] [--samples 100] [--onnx]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { DRAW_DESIGNS, type DrawDesign } from "../src/estimators/draws.ts";
import { estimateContrasts } from "../src/estimators/contrasts.ts";
import { type EstimatorName, resolveOptions } from "../src/estimators/options.ts";
import { exampleOracle, mixtureModel } from "../src/query/oracles.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { removeWord } from "../src/text/prompt.ts";
import type { Denoiser } from "../src/models/denoiser.ts";
import type { MixtureModel } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { calibrateProfile } from "../src/estimators/calibrate.ts";
import { withMembers } from "../src/models/denoiser.ts";
import { setWarningHandler } from "../src/warnings.ts";

/** One case: a model, a datum and the (richer, poorer) prompt pairs of its contrasts. */
interface DesignCase {
  readonly name: string;
  readonly model: Denoiser;
  readonly data: Float32Array;
  readonly pairs: readonly (readonly [string, string])[];
  /** exact values of the contrasts (mixture oracles), for bias and coverage */
  readonly exact?: readonly number[];
  readonly estimator: EstimatorName;
  readonly logSnr?: { loc: number; scale: number; clip: number };
}

/** A draw design with a proposal: what one row of the comparison runs. */
interface Scheme {
  readonly design: DrawDesign;
  readonly proposal: "logistic" | "fitted";
}

/**
 * The schemes compared: every design on the logistic (the reference's on its own clip-4 interval),
 * and the defaults with a fitted profile.
 */
const SCHEMES: readonly Scheme[] = [
  ...DRAW_DESIGNS.map((design) => ({ design, proposal: "logistic" as const })),
  { design: "stratified-antithetic", proposal: "fitted" },
  { design: "antithetic", proposal: "fitted" },
  { design: "iid", proposal: "fitted" },
];

/** Per contrast and scheme: variance ratio to iid, bias in SE, coverage. */
export interface DesignRow {
  readonly case: string;
  readonly contrast: string;
  readonly design: string;
  readonly varianceRatio: number;
  readonly biasSe?: number;
  readonly coverage2Se?: number;
  readonly coverageInterval?: number;
}

const WIDE = { loc: 1, scale: 2, clip: 5 };

async function runCase(
  c: DesignCase,
  seeds: number,
  samples: number,
  only?: readonly string[],
): Promise<DesignRow[]> {
  const prompts = [...new Set(c.pairs.flat())];
  const plan = {
    prompts,
    contrasts: c.pairs.map(([a, b]) => ({ with: prompts.indexOf(a), without: prompts.indexOf(b) })),
  };
  const wanted = (scheme: Scheme) =>
    !only || (scheme.design === "iid" && scheme.proposal === "logistic") ||
    only.includes(`${scheme.design}/${scheme.proposal}`);
  const schemes = SCHEMES.filter((scheme) =>
    (scheme.proposal === "logistic" || c.model.logSnrProfile) && wanted(scheme)
  );
  const byScheme = new Map<Scheme, { values: number[][]; covered: number[]; inside: number[] }>();
  // each warning once (the reference's scheme warns on every one of its seeds)
  const warned = new Set<string>();
  const previous = setWarningHandler((message) => {
    if (warned.has(message)) return;
    warned.add(message);
    console.error(message);
  });
  try {
    for (const scheme of schemes) {
      const values = c.pairs.map(() => [] as number[]);
      const covered = c.pairs.map(() => 0), inside = c.pairs.map(() => 0);
      for (let seed = 0; seed < seeds; seed++) {
        const options = resolveOptions(c.model, {
          samples,
          seed,
          estimator: c.estimator,
          design: scheme.design,
          proposal: scheme.proposal,
          // the reference's scheme keeps its own interval (clip 4): the case's would make it iid
          ...(c.logSnr && scheme.design !== "reference" ? { logSnr: c.logSnr } : {}),
        });
        const out = await estimateContrasts(c.model, c.data, plan, options);
        out.contrasts.forEach((r, k) => {
          values[k].push(r.estimate.nats);
          if (!c.exact) return;
          if (Math.abs(r.estimate.nats - c.exact[k]) <= 2 * r.estimate.se) covered[k]++;
          const { low, high } = r.estimate.interval!;
          if (low <= c.exact[k] && c.exact[k] <= high) inside[k]++;
        });
      }
      byScheme.set(scheme, { values, covered, inside });
    }
  } finally {
    setWarningHandler(previous);
  }
  const mean = (v: number[]) => v.reduce((s, x) => s + x, 0) / v.length;
  const variance = (v: number[]) => v.reduce((s, x) => s + (x - mean(v)) ** 2, 0) / (v.length - 1);
  const iid = byScheme.get(schemes.find((x) => x.design === "iid" && x.proposal === "logistic")!)!;
  return c.pairs.flatMap(([a, b], k) =>
    schemes.map((scheme) => {
      const s = byScheme.get(scheme)!;
      const row: DesignRow = {
        case: c.name,
        contrast: b === "" ? `"${a}" vs ""` : `"${a}" vs "${b}"`,
        design: `${scheme.design}, ${scheme.proposal}`,
        varianceRatio: variance(s.values[k]) / variance(iid.values[k]),
      };
      // the reference's clip-4 interval truncates another integral: no exact value to compare
      if (!c.exact || scheme.design === "reference") return row;
      const se = Math.sqrt(variance(s.values[k]) / seeds);
      return {
        ...row,
        biasSe: (mean(s.values[k]) - c.exact[k]) / se,
        coverage2Se: s.covered[k] / seeds,
        coverageInterval: s.inside[k] / seeds,
      };
    })
  );
}

async function oracleCases(): Promise<DesignCase[]> {
  const example = exampleOracle();
  const two = mixtureModel({
    shape: [2, 1, 2],
    components: [
      { words: ["red"], mean: [0.6, 0, 0.3, 0], variance: 0.25 },
      { words: ["blue"], mean: [0, 0.6, 0, 0.3], variance: 0.25 },
    ],
  });
  const exactOf = (m: MixtureModel, x: Float32Array, pairs: (readonly [string, string])[]) =>
    pairs.map(([a, b]) => m.logDensity(x, a) - m.logDensity(x, b));
  const x1 = example.sample(EXAMPLE_PROMPT, { seed: 1 });
  const pairs1 = [
    [EXAMPLE_PROMPT, ""] as const,
    ...["red", "circle", "left"].map((w) =>
      [EXAMPLE_PROMPT, removeWord(EXAMPLE_PROMPT, w)] as const
    ),
  ];
  const x2 = two.sample("red", { seed: 8 });
  const pairs2 = [["red", ""] as const];
  // profiles fitted on other images of the same prompts than the ones measured
  const fit = (m: MixtureModel, prompt: string, seeds: number[]) =>
    calibrateProfile(m, seeds.map((seed) => ({ data: m.sample(prompt, { seed }), prompt })), {
      samples: 200,
      logSnr: WIDE,
    });
  const exampleFitted = withMembers(example, {
    logSnrProfile: await fit(example, EXAMPLE_PROMPT, [50, 51, 52]),
  });
  const twoFitted = withMembers(two, { logSnrProfile: await fit(two, "red", [60, 61, 62]) });
  return [
    {
      name: "example oracle",
      model: exampleFitted,
      data: x1,
      pairs: pairs1,
      exact: exactOf(example, x1, pairs1),
      estimator: "standard",
      logSnr: WIDE,
    },
    {
      name: "two-word mixture",
      model: twoFitted,
      data: x2,
      pairs: pairs2,
      exact: exactOf(two, x2, pairs2),
      estimator: "standard",
      logSnr: WIDE,
    },
  ];
}

async function onnxCases(): Promise<{ cases: DesignCase[]; dispose: () => Promise<void> }> {
  // shapes-tiny carries its shipped profile (fitted on training scenes; these are test scenes)
  const tiny = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  const scalar = await loadModel("fixtures/models/sd-scalart-onnxdata", { device: "cpu" });
  const scenes = shapesWorld({ seed: 1, split: "test", count: 40 }).scenes
    .filter((s) => s.objects.length === 2).slice(0, 2);
  const cases: DesignCase[] = scenes.map((scene, i) => {
    const [first] = scene.objects;
    return {
      name: `shapes-tiny, scene ${i + 1}`,
      model: tiny,
      data: scene.toData(),
      pairs: [
        [scene.caption, removeWord(scene.caption, first.colour)] as const,
        [scene.caption, removeWord(scene.caption, first.shape)] as const,
      ],
      estimator: "orthogonal",
    };
  });
  const scalarData = new Float32Array(scalar.shape[0] * scalar.shape[1] * scalar.shape[2])
    .map((_, i) => Math.sin(i));
  cases.push({
    name: "sd-scalart (scalar timestep)",
    model: scalar,
    data: scalarData,
    pairs: [["a red circle", "a circle"] as const, ["a red circle", ""] as const],
    estimator: "orthogonal",
  });
  return {
    cases,
    dispose: async () => {
      await tiny.dispose();
      await scalar.dispose();
    },
  };
}

/**
 * Runs the comparison: the oracles at `seeds` seeds, the ONNX fixtures at `onnxSeeds` (0: skip).
 *
 * @example
 * ```ts ignore
 * import { benchDesigns } from "./designs.ts";
 * console.table(await benchDesigns({ seeds: 100, onnxSeeds: 0 }));
 * ```
 */
export async function benchDesigns(
  {
    seeds = 400,
    samples = 100,
    onnxSeeds = 40,
    onnxSamples = 40,
    only = undefined as readonly string[] | undefined,
  } = {},
): Promise<DesignRow[]> {
  const rows: DesignRow[] = [];
  if (seeds > 0) {
    for (const c of await oracleCases()) rows.push(...await runCase(c, seeds, samples, only));
  }
  if (onnxSeeds > 0) {
    const { cases, dispose } = await onnxCases();
    try {
      for (const c of cases) rows.push(...await runCase(c, onnxSeeds, onnxSamples, only));
    } finally {
      await dispose();
    }
  }
  return rows;
}

/** The rows as a Markdown table. */
export function designTable(rows: readonly DesignRow[]): string {
  const pct = (v?: number) => v === undefined ? "—" : `${(100 * v).toFixed(1)} %`;
  return [
    "| case | contrast | design | variance / iid | bias (SE) | ±2 SE covers | interval covers |",
    "| --- | --- | --- | --- | --- | --- | --- |",
    ...rows.map((r) =>
      `| ${r.case} | ${r.contrast} | ${r.design} | ${r.varianceRatio.toFixed(2)} | ${
        r.biasSe === undefined ? "—" : r.biasSe.toFixed(1)
      } | ${pct(r.coverage2Se)} | ${pct(r.coverageInterval)} |`
    ),
  ].join("\n");
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      seeds: { type: "string", default: "400" },
      samples: { type: "string", default: "100" },
      onnx: { type: "boolean", default: false },
      "onnx-seeds": { type: "string", default: "40" },
      // e.g. --only antithetic/fitted,stratified-antithetic/logistic (iid/logistic always runs)
      only: { type: "string" },
    },
  });
  const rows = await benchDesigns({
    seeds: Number(values.seeds),
    samples: Number(values.samples),
    onnxSeeds: values.onnx ? Number(values["onnx-seeds"]) : 0,
    only: values.only?.split(","),
  });
  console.log(designTable(rows));
}
