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
import { join } from "node:path";
import type { OnnxModel } from "../src/query/load-model.ts";
import { Random } from "../src/numerics/random.ts";
import { type Condition, shapeSize } from "../src/models/denoiser.ts";
import type { OnnxCondition } from "../src/models/onnx/onnx-model.ts";
import { concatenate } from "../src/models/onnx/pipeline.ts";
import { bytesOf, checkArgs, checkModels, loadForCheck } from "./gpu_check_common.ts";

/** The compared items: one timestep and one prompt each, spread over the schedule. */
const TIMESTEPS = [50, 300, 600, 950];
const PROMPTS = ["a photograph of an astronaut riding a horse", "", "a red circle", "a cat"];

const args = checkArgs("gpu_check.ts", "1,8,32");
const work = args.work;
await Deno.mkdir(work, { recursive: true });

interface Inputs {
  noisy: Float32Array;
  timesteps: Int32Array;
  conditions: Condition[];
}

/** The compared items, written for PyTorch as raw little-endian arrays. */
async function makeInputs(model: OnnxModel): Promise<Inputs> {
  const d = shapeSize(model.shape);
  const noisy = new Random(1).fillGaussian(new Float32Array(TIMESTEPS.length * d));
  const timesteps = Int32Array.from(TIMESTEPS);
  const conditions = await Promise.all(PROMPTS.map((p) => model.encode(p))) as OnnxCondition[];
  const hidden = conditions.map((c) => c.lastHiddenState);
  await Deno.writeFile(join(work, "noisy.f32"), bytesOf(noisy));
  await Deno.writeFile(join(work, "timesteps.i32"), bytesOf(timesteps));
  await Deno.writeFile(join(work, "hidden.f32"), bytesOf(concatenate(hidden)));
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
await checkModels(args, "infodiff.json", loadForCheck(args), async (label, dir, model) => {
  inputs ??= await makeInputs(model);
  const d = shapeSize(model.shape);
  if (inputs.noisy.length !== TIMESTEPS.length * d) {
    throw new Error(`${dir}'s data shape ${model.shape} is not the first model's`);
  }
  const predicted = await model.predictNoise({
    noisy: inputs.noisy,
    logSnr: logSnrOf(model, inputs.timesteps),
    conditions: inputs.conditions,
  });
  await Deno.writeFile(join(work, `${label}.f32`), bytesOf(predicted));
  return { condition: inputs.conditions[0], logSnr: model.snapLogSnr!(0), record: { dir } };
});
