/**
 * Benchmark of the ONNX backend on the committed fixtures, on this CPU: UNet calls per second at
 * batch sizes 1, 8 and 32 (predictNoise calls at one α), peak resident memory, and the share of a
 * 10-word `perToken()` spent outside `session.run` (tokenizing, noising, packing tensors, fp16
 * conversion, reductions). The fixture UNets are tiny, so that share is an upper bound: for a real
 * SD UNet session.run takes ~10⁴× longer while the overhead per item stays the same, so the
 * absolute overhead per UNet item is reported too.
 *
 * `families` measures the same glue at SDXL's, SD 3's and FLUX.1's real tensor sizes (near-free
 * graphs from bench/family-realsize.ts), with the conditioning rows each item writes and the
 * floor of any host-side glue at those sizes ({@link glueFloor}: an item's share of the noise and
 * of the noisy latent, one copy into the network's input, one pass reading ε̂), measured in the
 * same process; the load average is recorded, since the machine's load moves every figure.
 *
 * @module
 */
import { loadModel } from "../src/query/load-model.ts";
import type { OnnxModel } from "../src/query/load-model.ts";
import { Random } from "../src/numerics/random.ts";
import { noiseInto } from "../src/estimators/draws.ts";
import { median } from "./summary.ts";
import { familyRealSizeModels } from "./family-realsize.ts";

/** The 10-word prompt of the benchmark (every word is in the fixtures' tiny vocabulary). */
export const ONNX_BENCH_PROMPT = "a photo of a big red dog on the green grass";

/**
 * Fixtures measured: an fp32 [B]-timestep model, a scalar-timestep one, the fp16 one, and
 * `sd-realsize` (SD 2.x tensor sizes: 512 px, 4×64×64 latents, 77×1024 hidden states, with a
 * graph that costs almost nothing) whose numbers give the backend's own overhead at real sizes,
 * and `shapes-tiny`, a trained 2.3 M-parameter UNet: a real model whose session.run has real work.
 */
export const ONNX_BENCH_FIXTURES = [
  "sd-int32-int64t",
  "sd-scalart-onnxdata",
  "sd-fp16",
  "sd-realsize",
  "shapes-tiny",
] as const;

/** Repeats of the glue measurement on `sd-realsize` (100 and 200 draws each). */
const GLUE_REPEATS = 7;

/**
 * Runs the benchmark and returns its measurements.
 *
 * @example
 * ```ts ignore
 * import { benchOnnx } from "./onnx.ts";
 * console.log(await benchOnnx(0.5, ["sd-realsize"]));
 * ```
 */
export async function benchOnnx(
  seconds = 0.5,
  fixtures: readonly string[] = ONNX_BENCH_FIXTURES,
): Promise<Record<string, unknown>> {
  const peak = { rss: Deno.memoryUsage().rss };
  const sample = () => (peak.rss = Math.max(peak.rss, Deno.memoryUsage().rss));
  const results: Record<string, unknown> = {};
  for (const name of fixtures) {
    const model = await loadModel(`fixtures/models/${name}`, { device: "cpu", batchSize: 32 });
    try {
      const throughput: Record<string, unknown> = {};
      for (const batch of [1, 8, 32]) {
        throughput[`batch${batch}`] = await unetRate(model, batch, seconds, sample);
      }
      results[name] = {
        unetCallsPerSecond: throughput,
        perToken: await perTokenOverhead(
          `fixtures/models/${name}`,
          sample,
          name === "sd-realsize" ? GLUE_REPEATS : 0,
        ),
      };
    } finally {
      await model.dispose();
    }
  }
  sample();
  return {
    device: "cpu",
    cpus: navigator.hardwareConcurrency,
    fixtures: results,
    peakRssMiB: round(peak.rss / 2 ** 20),
  };
}

async function unetRate(model: OnnxModel, batch: number, seconds: number, sample: () => void) {
  const d = model.shape[0] * model.shape[1] * model.shape[2];
  const noisy = new Float32Array(batch * d);
  new Random(1).fillGaussian(noisy);
  const condition = await model.encode("a red circle");
  const request = {
    noisy,
    logSnr: new Float64Array(batch).fill(model.snapLogSnr!(1)),
    conditions: Array(batch).fill(condition),
  };
  await model.predictNoise(request); // warm-up
  const before = model.stats;
  const start = performance.now();
  let calls = 0;
  while (performance.now() - start < seconds * 1000) {
    await model.predictNoise(request);
    calls++;
    sample();
  }
  const wallMs = performance.now() - start;
  const runMs = model.stats.unetMs - before.unetMs;
  return {
    predictNoiseCallsPerSecond: round((calls * 1000) / wallMs),
    itemsPerSecond: round((calls * batch * 1000) / wallMs),
    sessionRunShare: round(runMs / wallMs),
  };
}

/**
 * A 10-word perToken() with the default 100 draws and batch size 8. Time outside session.run
 * counts every model's session.run (UNet, text encoder, VAE encoder) as inside. With `repeats`,
 * also the glue's split into a cost per UNet item and a fixed cost per query (decoding and resizing
 * the image, provenance), from queries of 100 and 200 draws: the per-item cost is the difference
 * over the difference in items, which is what a study of many draws pays per UNet item.
 */
async function perTokenOverhead(location: string, sample: () => void, repeats = 0) {
  const model = await loadModel(location, { device: "cpu", batchSize: 8 });
  try {
    const image = "fixtures/images/test-64.png";
    await model.info(image).given(ONNX_BENCH_PROMPT).samples(8).perToken(); // warm-up
    const run = async (samples: number, seed: number) => {
      const before = model.stats;
      const start = performance.now();
      await model.info(image).given(ONNX_BENCH_PROMPT).samples(samples).seed(seed).perToken();
      const wallMs = performance.now() - start;
      sample();
      const after = model.stats;
      const runMs = after.unetMs - before.unetMs + after.textEncoderMs - before.textEncoderMs +
        after.vaeEncoderMs - before.vaeEncoderMs;
      const items = after.unetItems - before.unetItems;
      const rows = after.unetConditionRows - before.unetConditionRows;
      return { wallMs, runMs, items, rows, calls: after.unetCalls - before.unetCalls };
    };
    const once = await run(100, 1);
    const result: Record<string, unknown> = {
      wallMs: round(once.wallMs),
      sessionRunMs: round(once.runMs),
      shareOutsideSessionRun: round(1 - once.runMs / once.wallMs),
      unetCalls: once.calls,
      unetItems: once.items,
      overheadMsPerUnetItem: round((once.wallMs - once.runMs) / once.items),
      // batched conditioning rows written per item (a row already in place is not rewritten)
      conditionRowsPerUnetItem: round(once.rows / once.items),
    };
    if (repeats > 0) {
      const perItem: number[] = [], perQuery: number[] = [], whole: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const short = await run(100, 2 + r), long = await run(200, 2 + r);
        const glue = (x: typeof short) => x.wallMs - x.runMs;
        const item = (glue(long) - glue(short)) / (long.items - short.items);
        perItem.push(item);
        perQuery.push(glue(short) - item * short.items);
        whole.push(glue(short) / short.items);
      }
      result.glue = {
        repeats,
        overheadMsPerUnetItem: spread(whole),
        marginalMsPerUnetItem: spread(perItem),
        fixedMsPerQuery: spread(perQuery),
      };
    }
    return result;
  } finally {
    await model.dispose();
  }
}

/** Repeats of the glue measurement at each family's real sizes (their items are 4–16× SD 2.x's). */
const FAMILY_GLUE_REPEATS = 3;

/**
 * The glue per UNet/transformer item of SDXL, SD 3 and FLUX.1 at their real tensor sizes
 * (bench/family-realsize.ts: near-free graphs with the real names and widths), measured as for
 * `sd-realsize`: the benchmark's perToken() at 100 and 200 draws, batch 8, every session.run
 * counted as inside; beside it each family's {@link glueFloor} and the load average before and
 * after.
 *
 * @example
 * ```ts ignore
 * import { benchFamilyGlue } from "./onnx.ts";
 * console.log(await benchFamilyGlue(1));
 * ```
 */
export async function benchFamilyGlue(
  repeats = FAMILY_GLUE_REPEATS,
): Promise<Record<string, unknown>> {
  const dirs = await familyRealSizeModels();
  const peak = { rss: Deno.memoryUsage().rss };
  const sample = () => (peak.rss = Math.max(peak.rss, Deno.memoryUsage().rss));
  const results: Record<string, unknown> = {};
  const loadBefore = Deno.loadavg()[0];
  for (const [family, dir] of Object.entries(dirs)) {
    const glue = await perTokenOverhead(dir, sample, repeats);
    const { shape, conditions } = await benchQueryShape(dir);
    results[family] = { ...glue, floor: glueFloor(shape, conditions) };
  }
  return {
    device: "cpu",
    cpus: navigator.hardwareConcurrency,
    loadAverage: { before: round(loadBefore, 2), after: round(Deno.loadavg()[0], 2) },
    ...results,
    peakRssMiB: round(peak.rss / 2 ** 20),
  };
}

/** A model's latent shape and the conditions of the benchmark's perToken() (its prompts). */
async function benchQueryShape(location: string) {
  const model = await loadModel(location, { device: "cpu", batchSize: 8 });
  try {
    const plan = model.info("fixtures/images/test-64.png").given(ONNX_BENCH_PROMPT).plan(
      "perToken",
    );
    return { shape: model.shape, conditions: plan.prompts.length };
  } finally {
    await model.dispose();
  }
}

/**
 * The least any host-side glue costs per UNet item of the benchmark's perToken() at a latent of
 * this shape (ms; median and range of `repeats`, after a warm-up): the item's share of one draw's
 * Gaussian noise (src/numerics/random.ts; a draw's ε serves every condition, and antithetic pairs,
 * the default design, halve the draws) and of the pass computing the draw's noisy latent
 * x_α = √σ(α)·x + √σ(−α)·ε (a flow model's x_t is the same for every condition too), one copy of
 * it into the item's row of the network's input, and one pass reading the item's ε̂ (Σ(ε − ε̂)²).
 * What a backend would spend that copied nothing else: no conditioning, no layout, no conversion.
 *
 * @example
 * ```ts ignore
 * console.log(glueFloor([16, 128, 128], 13));
 * ```
 */
export function glueFloor(
  shape: readonly [number, number, number],
  conditions: number,
  repeats = 15,
): Record<string, unknown> {
  const d = shape[0] * shape[1] * shape[2];
  const random = new Random(5);
  const data = random.fillGaussian(new Float32Array(d));
  const noise = new Float32Array(d), noisy = new Float32Array(d);
  const input = new Float32Array(8 * d); // a call's input: each repeat writes the next row
  const prediction = random.fillGaussian(new Float32Array(d));
  const block = {
    start: 0,
    count: 1,
    logSnr: Float64Array.of(0.3),
    weight: Float64Array.of(1),
    noise,
  };
  const parts = {
    noise: [] as number[],
    noisy: [] as number[],
    copy: [] as number[],
    read: [] as number[],
  };
  let sink = 0;
  // the first passes run before V8 has compiled the loops: warm-up, not counted
  const warmUp = 5;
  for (let r = 0; r < warmUp + repeats; r++) {
    const t0 = performance.now();
    random.fillGaussian(noise);
    const t1 = performance.now();
    noiseInto(noisy, 0, data, block, 0);
    const t2 = performance.now();
    input.set(noisy, (r % 8) * d);
    const t3 = performance.now();
    sink += squaredDifference(noise, prediction) + input[d - 1];
    const t4 = performance.now();
    if (r < warmUp) continue;
    parts.noise.push((t1 - t0) / (2 * conditions));
    parts.noisy.push((t2 - t1) / conditions);
    parts.copy.push(t3 - t2);
    parts.read.push(t4 - t3);
  }
  if (!Number.isFinite(sink)) throw new Error("glueFloor: non-finite values");
  const total = parts.noise.map((n, r) => n + parts.noisy[r] + parts.copy[r] + parts.read[r]);
  return {
    msPerUnetItem: spread(total),
    noiseShare: spread(parts.noise),
    noisyLatentShare: spread(parts.noisy),
    copyIntoInput: spread(parts.copy),
    readPrediction: spread(parts.read),
    conditions,
  };
}

/** Σ (a − b)², one pass reading both. */
function squaredDifference(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let j = 0; j < a.length; j++) {
    const e = a[j] - b[j];
    sum += e * e;
  }
  return sum;
}

/** Median and range of repeated measurements (this machine's load moves single runs by ±30 %). */
function spread(values: number[]): { median: number; min: number; max: number } {
  return {
    median: round(median(values), 4),
    min: round(Math.min(...values), 4),
    max: round(Math.max(...values), 4),
  };
}

function round(x: number, digits = 3): number {
  return Math.round(x * 10 ** digits) / 10 ** digits;
}

// `deno run -A bench/onnx.ts [fixture …]` measures only those fixtures; `families` the glue of
// SDXL, SD 3 and FLUX.1 at their real sizes
if (import.meta.main) {
  if (Deno.args[0] === "families") {
    const repeats = Deno.args[1] ? Number(Deno.args[1]) : FAMILY_GLUE_REPEATS;
    console.log(JSON.stringify(await benchFamilyGlue(repeats), null, 1));
  } else {
    const fixtures = Deno.args.length > 0 ? Deno.args : ONNX_BENCH_FIXTURES;
    console.log(JSON.stringify(await benchOnnx(0.5, fixtures), null, 1));
  }
}
