/**
 * infodiff's half of the GPU check's families step (tools/gpu-check.sh, issue 24): the FLUX.1 and
 * SD 3 pipelines of tools/build_family_realwidth.py (transformers of the released width, weights
 * filled by tools/family_weights.py) through `loadModel(…).predictNoise` on one device, at 1024²
 * (a 16×128×128 latent: FLUX.1's 4,096 packed tokens, SD 3's 4,096 patches). Writes, per model,
 * the compared items and infodiff's noise predictions for them (tools/gpu_check_families.py then
 * runs diffusers' transformer on the same inputs) and times batches.
 *
 *   deno run -A tools/gpu_check_families.ts --work DIR --device webgpu LABEL=FOLDER…
 *     [--batches 1,4] [--calls 2] [--resolution 1024]
 *
 * Into DIR/LABEL: inputs.json (family, shape, prompts, the items' log-SNRs and prompts, the
 * encoder outputs' shapes, the guidance), noisy.f32 (x_α of each item), states.f32 and pooled.f32
 * (each prompt's `encoder_hidden_states` and `pooled_projections`, as infodiff feeds them),
 * infodiff.f32 (ε̂ of each item); into DIR: infodiff-families.json (timings per model and batch).
 *
 * @module
 */
import { join } from "node:path";
import type { OnnxModel } from "../src/query/load-model.ts";
import type { OnnxCondition } from "../src/models/onnx/onnx-model.ts";
import { Random } from "../src/numerics/random.ts";
import { shapeSize } from "../src/models/denoiser.ts";
import { DEFAULT_FLUX_GUIDANCE } from "../src/models/onnx/flux-pipeline.ts";
import { concatenate } from "../src/models/onnx/pipeline.ts";
import { bytesOf, checkArgs, checkModels, loadForCheck } from "./gpu_check_common.ts";

/** The compared items: every prompt at every log-SNR (t = σ(−α/2): 0.88, 0.5, 0.12). */
const PROMPTS = ["a photograph of an astronaut riding a horse", ""];
const LOG_SNRS = [-4, 0, 4];
const POOLED = "pooled_projections";

const args = checkArgs("gpu_check_families.ts", "1,4", { resolution: "1024" });

/** Writes one model's items and its predictions for them. */
async function compared(model: OnnxModel, dir: string, config: Record<string, unknown>) {
  const family = String(config._class_name);
  await Deno.mkdir(dir, { recursive: true });
  const d = shapeSize(model.shape);
  const items = PROMPTS.flatMap((_, p) => LOG_SNRS.map((_, a) => [p, a] as const));
  const noisy = new Random(1).fillGaussian(new Float32Array(items.length * d));
  const conditions = await Promise.all(PROMPTS.map((p) => model.encode(p))) as OnnxCondition[];
  const states = conditions.map((c) => c.lastHiddenState);
  const pooled = conditions.map((c) => c.networkInputs!.get(POOLED)!);
  const predicted = await model.predictNoise({
    noisy,
    logSnr: Float64Array.from(items, ([, a]) => LOG_SNRS[a]),
    conditions: items.map(([p]) => conditions[p]),
  });
  await Deno.writeFile(join(dir, "noisy.f32"), bytesOf(noisy));
  await Deno.writeFile(join(dir, "states.f32"), bytesOf(concatenate(states)));
  await Deno.writeFile(join(dir, "pooled.f32"), bytesOf(concatenate(pooled)));
  await Deno.writeFile(join(dir, "infodiff.f32"), bytesOf(predicted));
  const width = Number(config.joint_attention_dim);
  await Deno.writeTextFile(
    join(dir, "inputs.json"),
    JSON.stringify(
      {
        family,
        shape: model.shape,
        prompts: PROMPTS,
        logSnrs: LOG_SNRS,
        items,
        stateShape: [states[0].length / width, width],
        pooledLength: pooled[0].length,
        guidance: family === "FluxTransformer2DModel" ? DEFAULT_FLUX_GUIDANCE : null,
      },
      null,
      1,
    ),
  );
  return conditions[0];
}

const load = loadForCheck(args, { resolution: Number(args.values.resolution) });
await checkModels(args, "infodiff-families.json", load, async (label, folder, model) => {
  const config = JSON.parse(await Deno.readTextFile(join(folder, "transformer", "config.json")));
  const condition = await compared(model, join(args.work, label), config);
  return { condition, logSnr: 0, record: { folder, shape: model.shape } };
});
