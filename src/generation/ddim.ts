/**
 * Deterministic DDIM sampling (η = 0) and DDIM inversion in a model's data space, on any
 * {@link Denoiser}: the exact oracles and the ONNX Stable Diffusion backend alike.
 *
 * One step from noise level s = σ(α) to s' (REFERENCE §2 parameterisation):
 * `x̂₀ = (z − √(1−s)·ε̂)/√s`, `z' = √s'·x̂₀ + √(1−s')·ε̂`. Generation walks the ladder of levels from
 * the noisiest to clean data (s' = 1 at the end, i.e. the last x̂₀ is returned); inversion runs the
 * same update from clean data up to the noisiest level, evaluating ε̂ at the level it moves to with
 * the current z (the usual approximation ε̂(z_{k−1}, α_k) ≈ ε̂(z_k, α_k) of diffusers'
 * DDIMInverseScheduler), so it is exact only in the limit of many steps.
 *
 * The ladder of levels ({@link ddimLadder}):
 * - a model with a training schedule (`Denoiser.schedule`, as the ONNX backend has): the trained
 *   timesteps diffusers' DDIMScheduler picks for the export's `timestep_spacing` and `steps_offset`
 *   (`schedule.inferenceTimesteps`; SD's configs: "leading", `t_k = k·⌊T/steps⌋ + 1`), or without
 *   that method DDIMScheduler's defaults (`k·⌊T/steps⌋`); the UNet is always evaluated at exactly
 *   those trained timesteps;
 * - any other model (the oracles): `steps` log-SNR values evenly spaced from the top of the
 *   model's `logSnrRange` down to its bottom, or over the reference range [−5, 7] when it has none,
 *   snapped with `snapLogSnr` when the model has one.
 *
 * Classifier-free guidance `ε̂ = ε̂("") + g·(ε̂(prompt) − ε̂(""))` is optional; the default is g = 1
 * (plain conditional ε̂, one model evaluation per item and step), which is what the information
 * estimators measure and what a model without a null-prompt training share supports.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import { checkModelData, shapeSize } from "../models/denoiser.ts";
import { Random } from "../numerics/random.ts";
import { sigmoid } from "../numerics/log-snr.ts";
import { guidedConditions, guidedNoise } from "./guided-noise.ts";

/** Options of {@link generate} and {@link generateFrom}. */
export interface GenerateOptions {
  /** number of DDIM steps (default 50) */
  readonly steps?: number;
  /** seed of the initial noise x_T ~ N(0, I) (default 0; ignored by {@link generateFrom}) */
  readonly seed?: number;
  /** classifier-free guidance scale g (default 1: no guidance, conditional ε̂ only) */
  readonly guidance?: number;
}

/** Options of {@link invert}. */
export interface InvertOptions {
  /** number of DDIM steps (default 50); regenerate with the same number */
  readonly steps?: number;
  /** classifier-free guidance scale used while inverting (default 1: none) */
  readonly guidance?: number;
}

/** The noise levels a DDIM run visits, least noisy first. */
export interface DdimLadder {
  /** log-SNR α of each level, strictly or weakly decreasing (index 0 = least noise) */
  readonly logSnr: Float64Array;
  /** the trained timestep of each level, for models with a schedule */
  readonly timesteps?: Int32Array;
  /** where the levels come from */
  readonly source: "schedule" | "log-snr grid";
}

/** One DDIM trajectory to run: its starting state and its prompt. */
export interface DdimRequest {
  /** the prompt conditioning every step */
  readonly prompt: string;
  /** the starting state: x_T for generation, the data for inversion (length c·h·w) */
  readonly start: Float32Array;
}

/** The log-SNR range used for models without a trained range (REFERENCE §3: α ∈ [−5, 7]). */
export const DDIM_REFERENCE_RANGE: { readonly min: number; readonly max: number } = Object.freeze({
  min: -5,
  max: 7,
});

/**
 * The levels a `steps`-step DDIM run visits on this model (see the module documentation).
 *
 * @example
 * ```ts
 * import { ddimLadder } from "./ddim.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const ladder = ddimLadder(exampleOracle(), 13);
 * console.assert(ladder.source === "log-snr grid" && ladder.logSnr[0] === 7 && ladder.logSnr[12] === -5);
 * ```
 */
export function ddimLadder(model: Denoiser, steps: number): DdimLadder {
  checkSteps(steps);
  const schedule = model.schedule;
  if (schedule) {
    const T = schedule.length;
    if (steps > T) {
      throw new InvalidArgumentError(
        `steps = ${steps} exceeds the ${T} trained timesteps of ${model.name}; expected 1…${T}`,
      );
    }
    const ratio = Math.floor(T / steps);
    const timesteps = schedule.inferenceTimesteps?.(steps) ??
      Int32Array.from({ length: steps }, (_, k) => k * ratio);
    const logSnr = Float64Array.from(timesteps, (t) => schedule.logSnr[t]);
    return { logSnr, timesteps, source: "schedule" };
  }
  const range = model.logSnrRange ?? DDIM_REFERENCE_RANGE;
  const logSnr = new Float64Array(steps);
  for (let k = 0; k < steps; k++) {
    const value = steps === 1 ? range.min : range.max - (k / (steps - 1)) * (range.max - range.min);
    logSnr[k] = model.snapLogSnr ? model.snapLogSnr(value) : value;
  }
  return { logSnr, source: "log-snr grid" };
}

/**
 * The seeded initial noise x_T ~ N(0, I) of {@link generate}.
 *
 * @example
 * ```ts
 * import { initialNoise } from "./ddim.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const a = initialNoise(exampleOracle(), 3), b = initialNoise(exampleOracle(), 3);
 * console.assert(a.length === 3 * 16 * 16 && a.every((v, i) => v === b[i]));
 * ```
 */
export function initialNoise(model: Denoiser, seed = 0): Float32Array {
  if (!Number.isFinite(seed)) {
    throw new InvalidArgumentError(`seed must be a finite number, got ${seed}`);
  }
  const noise = new Float32Array(shapeSize(model.shape));
  new Random(seed).fillGaussian(noise);
  return noise;
}

/**
 * Generates one datum (model data space: pixels, or a latent for latent models) from a prompt
 * with DDIM, η = 0, starting from the seeded x_T ({@link initialNoise}). Decode with
 * {@link toPixels}.
 *
 * @example
 * ```ts
 * import { generate } from "./ddim.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const x = await generate(model, "a red circle on the left", { steps: 20, seed: 1 });
 * // the oracle's red-circle-left picture has red (channel 0 high, channel 1 low) at (4, 8)
 * console.assert(x[8 * 16 + 4] > 0.5 && x[256 + 8 * 16 + 4] < -0.5);
 * ```
 */
export async function generate(
  model: Denoiser,
  prompt: string,
  options: GenerateOptions = {},
): Promise<Float32Array> {
  const xT = initialNoise(model, options.seed ?? 0);
  return await generateFrom(model, xT, prompt, options);
}

/**
 * Regenerates data from a given x_T (e.g. from {@link invert}) with DDIM, η = 0.
 *
 * @example
 * ```ts
 * import { generateFrom, initialNoise } from "./ddim.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const x = await generateFrom(model, initialNoise(model, 2), "a blue square on the top", { steps: 20 });
 * console.assert(x.length === 3 * 16 * 16);
 * ```
 */
export async function generateFrom(
  model: Denoiser,
  xT: Float32Array,
  prompt: string,
  options: GenerateOptions = {},
): Promise<Float32Array> {
  const [result] = await ddimBatch(model, [{ prompt, start: xT }], "generate", options);
  return result;
}

/**
 * Deterministic DDIM inversion: the noise x_T that DDIM with the same prompt and steps maps
 * (approximately) back to the image. Takes the same image inputs as `model.info` (a path or bytes
 * for ONNX models go through `model.prepare`).
 *
 * @example
 * ```ts
 * import { generateFrom, invert } from "./ddim.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const x = model.sample(EXAMPLE_PROMPT, { seed: 1 });
 * const xT = await invert(model, x, EXAMPLE_PROMPT, { steps: 50 });
 * const back = await generateFrom(model, xT, EXAMPLE_PROMPT, { steps: 50 });
 * const error = back.reduce((s, v, i) => s + (v - x[i]) ** 2, 0) / x.length;
 * console.assert(error < 0.01);
 * ```
 */
export async function invert(
  model: Denoiser,
  image: ImageInput,
  prompt: string,
  options: InvertOptions = {},
): Promise<Float32Array> {
  const data = await model.prepare(image);
  const [result] = await ddimBatch(model, [{ prompt, start: data }], "invert", options);
  return result;
}

/**
 * Runs several DDIM trajectories together, sharing every model call (all items are at the same
 * noise level at each step, so scalar-timestep models batch them too). `"generate"` maps each x_T
 * to data; `"invert"` maps each datum to its x_T. Results are in request order.
 *
 * @example
 * ```ts
 * import { ddimBatch, initialNoise } from "./ddim.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const out = await ddimBatch(model, [
 *   { prompt: "a red circle on the left", start: initialNoise(model, 1) },
 *   { prompt: "a green square on the right", start: initialNoise(model, 2) },
 * ], "generate", { steps: 10 });
 * console.assert(out.length === 2);
 * ```
 */
export async function ddimBatch(
  model: Denoiser,
  requests: readonly DdimRequest[],
  direction: "generate" | "invert",
  options: GenerateOptions | InvertOptions = {},
): Promise<Float32Array[]> {
  const ladder = ddimLadder(model, options.steps ?? 50);
  const states = requests.map((r, i) =>
    checkModelData(model.shape, r.start, `request ${i} (${direction})`).slice()
  );
  const { conditions, nullCondition, guidance } = await guidedConditions(
    model,
    requests.map((r) => r.prompt),
    options.guidance,
  );
  const levels = ladder.logSnr.length;
  // generate: level N−1 → … → 0 → clean; invert: clean → 0 → … → N−1
  const order = direction === "generate"
    ? Array.from({ length: levels }, (_, k) => levels - 1 - k)
    : Array.from({ length: levels }, (_, k) => k);
  for (const [position, level] of order.entries()) {
    const alpha = ladder.logSnr[level];
    const eps = await guidedNoise(model, states, alpha, conditions, nullCondition, guidance);
    if (direction === "generate") {
      const next = position === levels - 1 ? 1 : sigmoid(ladder.logSnr[level - 1]);
      states.forEach((z, i) => ddimStep(z, eps[i], sigmoid(alpha), next));
    } else {
      const from = position === 0 ? 1 : sigmoid(ladder.logSnr[order[position - 1]]);
      states.forEach((z, i) => ddimStep(z, eps[i], from, sigmoid(alpha)));
    }
  }
  return states;
}

/**
 * Denoiser data → CHW pixels in [−1, 1] (approximately: samples may overshoot slightly): the model's
 * `decode` (the VAE decoder of an ONNX export, identity for pixel space) when it has one, else the
 * data themselves, which are pixels for the oracles.
 *
 * @example
 * ```ts
 * import { toPixels } from "./ddim.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const pixels = await toPixels(model, model.sample("a red circle on the left"));
 * console.assert(pixels.length === 3 * 16 * 16);
 * ```
 */
export async function toPixels(model: Denoiser, data: Float32Array): Promise<Float32Array> {
  if (model.decode) return await model.decode(data);
  const channels = model.shape[0];
  if (channels !== 1 && channels !== 3) {
    throw new InvalidArgumentError(
      `${model.name} has ${channels}-channel data and no decode(); expected pixel data with 1 or 3 ` +
        `channels, or a model with a decoder`,
    );
  }
  return data.slice();
}

/** z ← √s'·x̂₀ + √(1−s')·ε̂ with x̂₀ = (z − √(1−s)·ε̂)/√s, in place. */
function ddimStep(z: Float32Array, eps: Float32Array, from: number, to: number): void {
  const rootFrom = Math.sqrt(from), noiseFrom = Math.sqrt(1 - from);
  const rootTo = Math.sqrt(to), noiseTo = Math.sqrt(1 - to);
  for (let j = 0; j < z.length; j++) {
    const x0 = (z[j] - noiseFrom * eps[j]) / rootFrom;
    z[j] = rootTo * x0 + noiseTo * eps[j];
  }
}

/**
 * Throws unless `steps` is a positive integer.
 *
 * @example
 * ```ts
 * import { checkSteps } from "./ddim.ts";
 * checkSteps(50);
 * ```
 */
export function checkSteps(steps: number): void {
  if (!Number.isInteger(steps) || steps < 1) {
    throw new InvalidArgumentError(`steps must be a positive integer, got ${steps}`);
  }
}
