/**
 * infodiff's half of tools/gpu-check.sh: runs the SD-1.5-sized benchmark UNet (built by
 * tools/build_sd15_benchmark.py) through `loadModel(…).predictNoise` on one device, writes its noise
 * predictions for fixed inputs (which tools/gpu_check.py then feeds PyTorch) and times batches.
 *
 *   deno run -A tools/gpu_check.ts --work DIR --device webgpu fp32=MODEL_DIR [fp16=MODEL_DIR]
 *     [--batches 1,8,32] [--calls 2]
 *
 * Writes into DIR: inputs.json, noisy.f32, timesteps.i32, hidden.f32 (the compared items, made by
 * the first model), `<label>.f32` (each model's predictions for them) and infodiff.json (timings:
 * items per second per batch, or the error a batch ran into).
 *
 * @module
 */
import { parseArgs } from "node:util";
import { join } from "node:path";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import { webgpuAdapter } from "../src/models/onnx/webgpu.ts";
import { Random } from "../src/numerics/random.ts";
import type { Device } from "../src/models/onnx/onnx-model.ts";
import type { Condition } from "../src/models/denoiser.ts";

/** The compared items: one timestep and one prompt each, spread over the schedule. */
const TIMESTEPS = [50, 300, 600, 950];
const PROMPTS = ["a photograph of an astronaut riding a horse", "", "a red circle", "a cat"];

const { values, positionals } = parseArgs({
  args: Deno.args,
  allowPositionals: true,
  options: {
    work: { type: "string" },
    device: { type: "string", default: "webgpu" },
    batches: { type: "string", default: "1,8,32" },
    calls: { type: "string", default: "2" },
  },
});
if (!values.work || positionals.length === 0) {
  console.error("usage: gpu_check.ts --work DIR [--device D] LABEL=MODEL_DIR…");
  Deno.exit(2);
}
const work = values.work;
const device = values.device as Device;
const batches = values.batches.split(",").map(Number);
const calls = Number(values.calls);
await Deno.mkdir(work, { recursive: true });

interface Inputs {
  noisy: Float32Array;
  timesteps: Int32Array;
  conditions: Condition[];
}

/** The compared items, written for PyTorch as raw little-endian arrays. */
async function makeInputs(model: OnnxModel): Promise<Inputs> {
  const d = model.shape[0] * model.shape[1] * model.shape[2];
  const noisy = new Random(1).fillGaussian(new Float32Array(TIMESTEPS.length * d));
  const timesteps = Int32Array.from(TIMESTEPS);
  const conditions = await Promise.all(PROMPTS.map((p) => model.encode(p)));
  const hidden = conditions.map((c) =>
    (c as unknown as { lastHiddenState: Float32Array })
      .lastHiddenState
  );
  const joined = new Float32Array(hidden.reduce((n, h) => n + h.length, 0));
  hidden.reduce((offset, h) => (joined.set(h, offset), offset + h.length), 0);
  await Deno.writeFile(join(work, "noisy.f32"), new Uint8Array(noisy.buffer));
  await Deno.writeFile(join(work, "timesteps.i32"), new Uint8Array(timesteps.buffer));
  await Deno.writeFile(join(work, "hidden.f32"), new Uint8Array(joined.buffer));
  await Deno.writeTextFile(
    join(work, "inputs.json"),
    JSON.stringify({
      shape: model.shape,
      predictionType: model.schedule!.predictionType,
      timesteps: TIMESTEPS,
      prompts: PROMPTS,
      hiddenShape: [77, hidden[0].length / 77],
    }),
  );
  return { noisy, timesteps, conditions };
}

/** log-SNR values that the model snaps back to exactly these timesteps. */
function logSnrOf(model: OnnxModel, timesteps: Int32Array): Float64Array {
  const logSnr = Float64Array.from(timesteps, (t) => model.schedule!.logSnr[t]);
  logSnr.forEach((a, i) => {
    const t = model.schedule!.nearestTimestep(a);
    if (t !== timesteps[i]) throw new Error(`timestep ${timesteps[i]} snaps to ${t}`);
  });
  return logSnr;
}

/** Items per second at one batch size: a warm-up call, then `calls` timed calls. */
async function timeBatch(model: OnnxModel, batch: number, condition: Condition) {
  const d = model.shape[0] * model.shape[1] * model.shape[2];
  const request = {
    noisy: new Random(2).fillGaussian(new Float32Array(batch * d)),
    logSnr: new Float64Array(batch).fill(model.snapLogSnr!(0)),
    conditions: Array(batch).fill(condition),
  };
  try {
    const warm = performance.now();
    await model.predictNoise(request);
    const firstCallSeconds = (performance.now() - warm) / 1000;
    const before = model.stats.unetCalls;
    const start = performance.now();
    for (let i = 0; i < calls; i++) await model.predictNoise(request);
    const seconds = (performance.now() - start) / 1000;
    return {
      batch,
      calls,
      firstCallSeconds,
      secondsPerCall: seconds / calls,
      itemsPerSecond: (calls * batch) / seconds,
      sessionRunsPerCall: (model.stats.unetCalls - before) / calls,
    };
  } catch (error) {
    return { batch, error: (error as Error).message.split("\n")[0] };
  }
}

let inputs: Inputs | undefined;
const report: Record<string, unknown> = {
  device,
  adapter: device === "webgpu" ? (await webgpuAdapter())?.description ?? null : null,
  deno: Deno.version.deno,
  date: new Date().toISOString(),
  models: {},
};
for (const spec of positionals) {
  const [label, dir] = spec.split("=");
  const started = performance.now();
  const model = await loadModel(dir, { device, batchSize: Math.max(...batches) });
  const sessionSeconds = (performance.now() - started) / 1000;
  try {
    inputs ??= await makeInputs(model);
    const d = model.shape[0] * model.shape[1] * model.shape[2];
    if (inputs.noisy.length !== TIMESTEPS.length * d) {
      throw new Error(`${dir}'s data shape ${model.shape} is not the first model's`);
    }
    const predicted = await model.predictNoise({
      noisy: inputs.noisy,
      logSnr: logSnrOf(model, inputs.timesteps),
      conditions: inputs.conditions,
    });
    await Deno.writeFile(
      join(work, `${label}.f32`),
      new Uint8Array(predicted.buffer, predicted.byteOffset, predicted.byteLength),
    );
    const timings: Record<string, unknown>[] = [];
    for (const batch of batches) {
      // after a failed batch (an allocation over the device's limits) larger ones are not tried
      const failed = timings.find((t) => "error" in t);
      timings.push(
        failed
          ? { batch, error: `not tried: batch ${failed.batch} failed` }
          : await timeBatch(model, batch, inputs.conditions[0]),
      );
      console.error(`${label} on ${model.device}: ${JSON.stringify(timings.at(-1))}`);
    }
    (report.models as Record<string, unknown>)[label] = {
      dir,
      device: model.device,
      sessionSeconds,
      timings,
    };
  } finally {
    await model.dispose();
  }
}
await Deno.writeTextFile(join(work, "infodiff.json"), JSON.stringify(report, null, 1));
console.log(JSON.stringify(report));
