/**
 * Benchmark on a real-size model: Stable Diffusion 1.5's UNet architecture (859,520,964
 * parameters, random weights) made by `deno task bench:model` (tools/build_sd15_benchmark.py)
 * into out/sd15-bench; never committed. Reports session creation, UNet items per second and the
 * share of time outside `session.run`, per device (`INFODIFF_BENCH_DEVICES`, default "cpu"; e.g.
 * "cpu,webgpu,cuda" on a GPU machine). Skipped, saying how to make it, when the model is absent.
 *
 * @module
 */
import { loadModel } from "../src/query/load-model.ts";
import { Random } from "../src/numerics/random.ts";
import type { Device } from "../src/models/onnx/onnx-model.ts";

/**
 * Loads the model on each device and times `calls` UNet calls of `batch` items after a warm-up.
 *
 * @example
 * ```ts ignore
 * import { benchRealSize } from "./realsize.ts";
 * console.log(await benchRealSize("out/sd15-bench", { calls: 2 }));
 * ```
 */
export async function benchRealSize(
  dir = "out/sd15-bench",
  { calls = 2, batch = 1 }: { calls?: number; batch?: number } = {},
): Promise<Record<string, unknown>> {
  try {
    await Deno.stat(`${dir}/unet/model.onnx`);
  } catch {
    return {
      skipped: `no ${dir}: run \`deno task bench:model\` (3.4 GB, a few minutes) to make it`,
    };
  }
  const devices = (Deno.env.get("INFODIFF_BENCH_DEVICES") ?? "cpu").split(",") as Device[];
  const results = [];
  for (const device of devices) {
    const started = performance.now();
    const model = await loadModel(dir, { device, batchSize: batch });
    const sessionSeconds = (performance.now() - started) / 1000;
    try {
      const d = model.shape[0] * model.shape[1] * model.shape[2];
      const request = {
        noisy: new Random(1).fillGaussian(new Float32Array(batch * d)),
        logSnr: new Float64Array(batch).fill(model.snapLogSnr!(0)),
        conditions: Array(batch).fill(await model.encode("a photograph of an astronaut")),
      };
      const warm = performance.now();
      await model.predictNoise(request);
      const firstCallSeconds = (performance.now() - warm) / 1000;
      const before = model.stats;
      const start = performance.now();
      for (let i = 0; i < calls; i++) await model.predictNoise(request);
      const wallMs = performance.now() - start;
      const runMs = model.stats.unetMs - before.unetMs;
      results.push({
        device: model.device,
        batch,
        calls,
        sessionSeconds: round(sessionSeconds),
        firstCallSeconds: round(firstCallSeconds),
        secondsPerItem: round(wallMs / 1000 / (calls * batch)),
        itemsPerSecond: round((calls * batch * 1000) / wallMs),
        shareOutsideSessionRun: round(1 - runMs / wallMs),
        overheadMsPerItem: round((wallMs - runMs) / (calls * batch)),
      });
    } finally {
      await model.dispose();
    }
  }
  return { model: dir, parameters: 859_520_964, results };
}

function round(x: number): number {
  return Math.round(x * 10000) / 10000;
}

if (import.meta.main) console.log(JSON.stringify(await benchRealSize(Deno.args[0]), null, 1));
