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
import { Random } from "../src/numerics/random.ts";
import type { Device } from "../src/models/onnx/onnx-model.ts";
import type { Condition } from "../src/models/denoiser.ts";
import { reportHeader, timeBatch, timeBatches } from "./gpu_check_timing.ts";

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

let inputs: Inputs | undefined;
const report = await reportHeader(device);
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
    const condition = inputs.conditions[0];
    const timings = await timeBatches(
      label,
      model,
      batches,
      (batch) => timeBatch(model, batch, condition, model.snapLogSnr!(0), calls),
    );
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
