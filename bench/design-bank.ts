/**
 * Variance per model call of the draw designs on shapes-tiny, measured precisely: a bank of the
 * orthogonal estimator's unweighted integrand g(t, ε) at every trained timestep t (4 noise draws
 * each, two antithetic pairs) for 8 held-out test scenes × 3 contrasts (the first object's colour
 * word, its shape word, the whole caption against ""), and every design simulated from the bank:
 * α drawn as the design draws it and snapped to its timestep, ε drawn from that timestep's bank,
 * 10,000 simulated estimates per design and contrast. Real runs over 40 seeds (bench/designs.ts)
 * measure a variance ratio to about ±30 %; the bank measures it to about ±3 %, so designs and
 * defensive shares can be told apart. Ratios are to the i.i.d. logistic scheme at equal draws.
 *
 * Building the banks takes about 26 minutes on 2 cores (128,000 UNet items); they are kept in
 * out/design-bank/ (each with a file naming its scene) and reused. `deno run -A bench/design-bank.ts [--samples 40] [--replicates N]`.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import { resolveOptions } from "../src/estimators/options.ts";
import {
  DEFENSIVE_SHARE,
  fittedProposal,
  logisticProposal,
  type LogSnrProfile,
  type LogSnrProposal,
} from "../src/numerics/proposal.ts";
import { Random } from "../src/numerics/random.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { removeWord } from "../src/text/prompt.ts";
import { planProposal, profileMasses } from "../src/estimators/contrast-profile.ts";
import { median } from "./summary.ts";

const DIR = "out/design-bank";
/** noise draws per timestep: two antithetic pairs */
export const NOISES = 4;
/** contrasts per scene: colour word, shape word, caption vs "" */
export const CONTRASTS = 3;

/** A scene's bank: g at [t][noise][contrast], and what the contrasts are. */
export interface Bank {
  readonly caption: string;
  readonly words: readonly string[];
  /** the caption, without the colour word, without the shape word, and "" */
  readonly prompts: readonly string[];
  readonly g: Float64Array;
}

/**
 * The held-out scenes: two sets of three two-object scenes and one one-object scene. The first set
 * chose the profile's smoothing and share; the second confirms them on scenes nothing was tuned on.
 */
function bankScenes() {
  const scenes = shapesWorld({ seed: 1, split: "test", count: 40 }).scenes;
  const two = scenes.filter((s) => s.objects.length === 2);
  const one = scenes.filter((s) => s.objects.length === 1);
  return [...two.slice(0, 3), ...one.slice(0, 1), ...two.slice(3, 6), ...one.slice(1, 2)];
}

/** The caption, without its first object's colour word, without its shape word, and "". */
function scenePrompts(scene: ReturnType<typeof bankScenes>[number]): string[] {
  const [first] = scene.objects;
  return [
    scene.caption,
    removeWord(scene.caption, first.colour),
    removeWord(scene.caption, first.shape),
    "",
  ];
}

/** Contrast c's prompts: the caption and the poorer prompt. */
export function bankPrompts(bank: Bank, c: number): string[] {
  return [bank.prompts[0], bank.prompts[c + 1]];
}

async function buildBank(
  model: OnnxModel,
  scene: ReturnType<typeof bankScenes>[number],
  seed: number,
): Promise<Float64Array> {
  const prompts = scenePrompts(scene);
  const conditions = await Promise.all(prompts.map((p) => model.encode(p)));
  const x = scene.toData(), d = x.length, K = prompts.length;
  const logSnr = model.schedule!.logSnr, T = logSnr.length;
  const g = new Float64Array(T * NOISES * CONTRASTS);
  const random = new Random(seed), eps = new Float32Array(d);
  for (let t = 0; t < T; t++) {
    const s = 1 / (1 + Math.exp(-logSnr[t])), a = Math.sqrt(s), b = Math.sqrt(1 - s);
    const noisy = new Float32Array(NOISES * K * d);
    for (let e = 0; e < NOISES; e++) {
      if (e % 2 === 0) random.fillGaussian(eps);
      else eps.forEach((v, j) => eps[j] = -v);
      for (let k = 0; k < K; k++) {
        for (let j = 0; j < d; j++) noisy[(e * K + k) * d + j] = a * x[j] + b * eps[j];
      }
    }
    const out = await model.predictNoise({
      noisy,
      logSnr: new Float64Array(NOISES * K).fill(logSnr[t]),
      conditions: Array.from({ length: NOISES * K }, (_, i) => conditions[i % K]),
    });
    for (let e = 0; e < NOISES; e++) {
      const at = (k: number) => out.subarray((e * K + k) * d, (e * K + k + 1) * d);
      [1, 2, 3].forEach((without, c) => {
        const A = at(0), B = at(without);
        let sum = 0;
        for (let j = 0; j < d; j++) sum += (A[j] - B[j]) ** 2;
        g[(t * NOISES + e) * CONTRASTS + c] = 0.5 * sum; // as the estimator's per-draw value / weight
      });
    }
  }
  return g;
}

/** A cached bank, if there is one for this scene (its caption file names the scene). */
async function readBank(file: string, caption: string): Promise<Float64Array | undefined> {
  try {
    if (await Deno.readTextFile(`${file}.caption`) !== caption) return undefined;
    return new Float64Array((await Deno.readFile(file)).buffer);
  } catch {
    return undefined;
  }
}

/**
 * The banks of the held-out scenes, building the missing ones (about 3 minutes each), or with
 * `build: false` only those already in out/design-bank.
 */
export async function loadBanks(model: OnnxModel, { build = true } = {}): Promise<Bank[]> {
  await Deno.mkdir(DIR, { recursive: true });
  const banks: Bank[] = [];
  for (const [i, scene] of bankScenes().entries()) {
    const file = `${DIR}/scene${i}.bin`;
    let g = await readBank(file, scene.caption);
    if (!g && !build) continue;
    if (!g) {
      console.error(`building the bank of "${scene.caption}" (about 3 minutes)`);
      g = await buildBank(model, scene, 1000 + i);
      await Deno.writeFile(file, new Uint8Array(g.buffer));
      await Deno.writeTextFile(`${file}.caption`, scene.caption);
    }
    const [first] = scene.objects;
    banks.push({
      caption: scene.caption,
      words: [first.colour, first.shape, '""'],
      prompts: scenePrompts(scene),
      g,
    });
  }
  return banks;
}

/** A proposal's quantile function tabulated on a fine grid (linear between), for speed. */
export function tabulated(proposal: LogSnrProposal): LogSnrProposal["at"] {
  const M = 20000;
  const table = Array.from({ length: M + 1 }, (_, i) => proposal.at(Math.min(i / M, 1 - 1e-12)));
  return (p) => {
    const x = p * M, i = Math.floor(x), f = x - i;
    const a = table[i], b = table[Math.min(M, i + 1)];
    return {
      logSnr: a.logSnr + f * (b.logSnr - a.logSnr),
      weight: a.weight + f * (b.weight - a.weight),
    };
  };
}

/** The variance of `replicates` simulated estimates of `samples` draws from the bank. */
function simulatedVariance(
  model: OnnxModel,
  bank: Bank,
  contrast: number,
  design: { stratified: boolean; antithetic: boolean },
  at: LogSnrProposal["at"],
  samples: number,
  replicates: number,
): number {
  const random = new Random(2);
  const group = design.antithetic ? 2 : 1, strata = samples / group;
  const value = (t: number, e: number) => bank.g[(t * NOISES + e) * CONTRASTS + contrast];
  let sum = 0, sumSquares = 0;
  for (let r = 0; r < replicates; r++) {
    let total = 0;
    for (let k = 0; k < strata; k++) {
      const { logSnr, weight } = at(
        design.stratified ? (k + random.uniform()) / strata : random.uniform(),
      );
      const t = model.schedule!.nearestTimestep(logSnr);
      if (design.antithetic) {
        const pair = 2 * random.int(2);
        total += weight * (value(t, pair) + value(t, pair + 1));
      } else total += weight * value(t, random.int(NOISES));
    }
    const estimate = total / samples;
    sum += estimate;
    sumSquares += estimate * estimate;
  }
  return (sumSquares - sum * sum / replicates) / (replicates - 1);
}

/** A profile fitted to one bank contrast alone (every timestep, all its noises): the ceiling. */
function ownProfile(model: OnnxModel, shipped: LogSnrProfile, bank: Bank, c: number) {
  const { edges } = shipped, B = edges.length - 1, logSnr = model.schedule!.logSnr;
  const sums = new Float64Array(B), counts = new Float64Array(B);
  for (let t = 0; t < logSnr.length; t++) {
    const b = edges.findIndex((e, j) => j < B && logSnr[t] >= e && logSnr[t] < edges[j + 1]);
    if (b < 0) continue;
    for (let e = 0; e < NOISES; e++) sums[b] += bank.g[(t * NOISES + e) * CONTRASTS + c] ** 2;
    counts[b] += NOISES;
  }
  return { ...shipped, mass: profileMasses(sums.map((s, b) => counts[b] ? s / counts[b] : 0)) };
}

/** One row per contrast and scheme, and the median and worst ratio per scheme. */
export interface BankReport {
  readonly samples: number;
  readonly replicates: number;
  readonly rows: { contrast: string; scheme: string; varianceRatio: number }[];
  readonly summary: { scheme: string; median: number; worst: number }[];
}

/**
 * Runs the comparison (building missing banks first). The fitted proposals draw from the shipped
 * profile as a query would: each contrast from its word's profile (`planProposal`), or, for the
 * "model profile" rows, from the model's profile alone (what a word calibration never saw gets).
 *
 * @example
 * ```ts ignore
 * import { benchDesignBank } from "./design-bank.ts";
 * console.log((await benchDesignBank({ replicates: 2000 })).summary);
 * ```
 */
export async function benchDesignBank(
  { samples = 40, replicates = 10_000, lambdas = [0.5, 0.25, 0.1] } = {},
): Promise<BankReport> {
  const model = await loadModel("fixtures/models/shapes-tiny", { device: "cpu", batchSize: 32 });
  try {
    const banks = await loadBanks(model);
    const sampling = resolveOptions(model, {}).logSnr;
    const shipped = model.logSnrProfile!;
    const logistic = tabulated(logisticProposal(sampling));
    // the reference's scheme: i.i.d. from the logistic clipped at 4, snapped (clamped) to the
    // trained timesteps
    const reference = tabulated(
      logisticProposal(resolveOptions(model, { design: "reference" }).logSnr),
    );
    // what a word calibration never saw draws from: the model's profile alone
    const modelOnly = tabulated(fittedProposal(sampling, shipped, DEFENSIVE_SHARE));
    const iid = { stratified: false, antithetic: false };
    const sa = { stratified: true, antithetic: true };
    const designs = {
      iid,
      antithetic: { stratified: false, antithetic: true },
      stratified: { stratified: true, antithetic: false },
      "stratified-antithetic": sa,
    };
    const rows: BankReport["rows"] = [];
    for (const bank of banks) {
      for (let c = 0; c < CONTRASTS; c++) {
        const contrast = `${bank.caption} − ${bank.words[c]}`;
        const variance = (design: typeof iid, at: LogSnrProposal["at"]) =>
          simulatedVariance(model, bank, c, design, at, samples, replicates);
        const base = variance(iid, logistic);
        const add = (scheme: string, v: number) =>
          rows.push({ contrast, scheme, varianceRatio: v / base });
        add("reference (i.i.d., logistic clipped at 4)", variance(iid, reference));
        for (const [name, design] of Object.entries(designs)) {
          if (name !== "iid") add(`${name}, logistic`, variance(design, logistic));
        }
        const plan = { prompts: bankPrompts(bank, c), contrasts: [{ with: 0, without: 1 }] };
        for (const lambda of lambdas) {
          const chosen = lambda === DEFENSIVE_SHARE;
          const selected = planProposal({ kind: "fitted", lambda, profile: shipped }, plan);
          const at = tabulated(
            fittedProposal(sampling, (selected as { profile: LogSnrProfile }).profile, lambda),
          );
          for (const [name, design] of Object.entries(designs)) {
            // the other designs only at the default share
            if (name !== "stratified-antithetic" && !chosen) continue;
            const suffix = chosen && name === "stratified-antithetic" ? " (the default)" : "";
            add(`${name}, word profiles λ = ${lambda}${suffix}`, variance(design, at));
          }
        }
        add(`stratified-antithetic, model profile λ = ${DEFENSIVE_SHARE}`, variance(sa, modelOnly));
        const own = tabulated(fittedProposal(sampling, ownProfile(model, shipped, bank, c), 0.1));
        add(
          "stratified-antithetic, the contrast's own profile λ = 0.1 (ceiling)",
          variance(sa, own),
        );
      }
    }
    const schemes = [...new Set(rows.map((r) => r.scheme))];
    const summary = schemes.map((scheme) => {
      const ratios = rows.filter((r) => r.scheme === scheme).map((r) => r.varianceRatio);
      return { scheme, median: median(ratios), worst: Math.max(...ratios) };
    });
    return { samples, replicates, rows, summary };
  } finally {
    await model.dispose();
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      samples: { type: "string", default: "40" },
      replicates: { type: "string", default: "10000" },
    },
  });
  const report = await benchDesignBank({
    samples: Number(values.samples),
    replicates: Number(values.replicates),
  });
  for (const row of report.rows) {
    console.log(`${row.contrast} | ${row.scheme} | ${row.varianceRatio.toFixed(2)}`);
  }
  console.log("\n| design, proposal | variance / iid: median | worst |\n| --- | --- | --- |");
  for (const s of report.summary) {
    console.log(`| ${s.scheme} | ${s.median.toFixed(2)} | ${s.worst.toFixed(2)} |`);
  }
}
