/**
 * Benchmark of the ONNX backend on the committed fixtures, on this CPU: UNet calls per second at
 * batch sizes 1, 8 and 32 (predictNoise calls at one α), peak resident memory, and the share of a
 * 10-word `perToken()` spent outside `session.run` (tokenizing, noising, packing tensors, fp16
 * conversion, reductions). The fixture UNets are tiny, so that share is an upper bound: for a real
 * SD UNet session.run takes ~10⁴× longer while the overhead per item stays the same, so the
 * absolute overhead per UNet item is reported too.
 *
 * @module
 */
import { loadModel } from "../src/query/load-model.ts";
import type { OnnxModel } from "../src/query/load-model.ts";
import { Random } from "../src/numerics/random.ts";

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

/**
 * Runs the benchmark and returns its measurements.
 *
 * @example
 * ```ts ignore
 * import { benchOnnx } from "./onnx.ts";
 * console.log(await benchOnnx());
 * ```
 */
export async function benchOnnx(seconds = 0.5): Promise<Record<string, unknown>> {
  const peak = { rss: Deno.memoryUsage().rss };
  const sample = () => (peak.rss = Math.max(peak.rss, Deno.memoryUsage().rss));
  const results: Record<string, unknown> = {};
  for (const name of ONNX_BENCH_FIXTURES) {
    const model = await loadModel(`fixtures/models/${name}`, { device: "cpu", batchSize: 32 });
    try {
      const throughput: Record<string, unknown> = {};
      for (const batch of [1, 8, 32]) {
        throughput[`batch${batch}`] = await unetRate(model, batch, seconds, sample);
      }
      results[name] = {
        unetCallsPerSecond: throughput,
        perToken: await perTokenOverhead(name, sample),
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
    logSnr: new Float64Array(batch).fill(model.snapLogSnr(1)),
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

/** A 10-word perToken() with the default 100 draws and batch size 8. */
async function perTokenOverhead(name: string, sample: () => void) {
  const model = await loadModel(`fixtures/models/${name}`, { device: "cpu", batchSize: 8 });
  try {
    const image = "fixtures/images/test-64.png";
    await model.info(image).given(ONNX_BENCH_PROMPT).samples(8).perToken(); // warm-up
    const before = model.stats;
    const start = performance.now();
    await model.info(image).given(ONNX_BENCH_PROMPT).samples(100).seed(1).perToken();
    const wallMs = performance.now() - start;
    sample();
    const after = model.stats;
    const runMs = after.unetMs - before.unetMs + after.textEncoderMs - before.textEncoderMs;
    const items = after.unetItems - before.unetItems;
    return {
      wallMs: round(wallMs),
      sessionRunMs: round(runMs),
      shareOutsideSessionRun: round(1 - runMs / wallMs),
      unetCalls: after.unetCalls - before.unetCalls,
      unetItems: items,
      overheadMsPerUnetItem: round((wallMs - runMs) / items),
    };
  } finally {
    await model.dispose();
  }
}

function round(x: number): number {
  return Math.round(x * 1000) / 1000;
}

if (import.meta.main) console.log(JSON.stringify(await benchOnnx(), null, 1));
