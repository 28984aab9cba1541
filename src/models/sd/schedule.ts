/**
 * The discrete noise schedule of a Stable Diffusion export (`scheduler/scheduler_config.json`):
 * betas → ᾱ_t → log-SNR α_t = log ᾱ_t − log(1 − ᾱ_t), the trained α range, and the map from a
 * continuous α to the nearest trained timestep (REFERENCE §4).
 *
 * @module
 */
import { InvalidArgumentError, ModelLoadError } from "../../errors.ts";
import type { LogSnrRange } from "../denoiser.ts";

/** What the UNet predicts: the noise ε, or v = sqrt(ᾱ)·ε − sqrt(1−ᾱ)·x₀. */
export type PredictionType = "epsilon" | "v_prediction";

/** The fields of a diffusers `scheduler_config.json` that define the training schedule. */
export interface SchedulerConfig {
  /** `scaled_linear`, `linear` or `squaredcos_cap_v2` (ignored when `trained_betas` is given) */
  readonly beta_schedule?: string;
  /** first beta (linear schedules) */
  readonly beta_start?: number;
  /** last beta (linear schedules) */
  readonly beta_end?: number;
  /** number of training timesteps (1000 for SD) */
  readonly num_train_timesteps?: number;
  /** explicit betas, one per timestep */
  readonly trained_betas?: readonly number[] | null;
  /** `epsilon` (default) or `v_prediction` */
  readonly prediction_type?: string;
}

/**
 * A trained diffusion schedule. Index t = 0 is the least noisy step; α_t decreases with t.
 *
 * @example
 * ```ts
 * import { NoiseSchedule } from "./schedule.ts";
 * const sd = NoiseSchedule.fromConfig({
 *   beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012, num_train_timesteps: 1000,
 * });
 * console.assert(Math.abs(sd.logSnr[0] - 7.069) < 1e-3);
 * console.assert(sd.nearestTimestep(1) === 214);
 * ```
 */
export class NoiseSchedule {
  /** β_t for each trained timestep */
  readonly betas: Float64Array;
  /** ᾱ_t = Π_{s≤t} (1 − β_s) */
  readonly alphasCumprod: Float64Array;
  /** α_t = log ᾱ_t − log(1 − ᾱ_t), strictly decreasing in t */
  readonly logSnr: Float64Array;
  /** what the UNet outputs */
  readonly predictionType: PredictionType;

  /**
   * Builds the tables from the betas.
   *
   * @param betas one β per timestep, each in (0, 1)
   * @param predictionType what the UNet predicts
   */
  constructor(betas: Float64Array, predictionType: PredictionType = "epsilon") {
    if (betas.length < 2) {
      throw new ModelLoadError(`a schedule needs at least 2 timesteps, got ${betas.length}`);
    }
    for (const [t, beta] of betas.entries()) {
      if (!(beta > 0 && beta < 1)) {
        throw new ModelLoadError(`beta_${t} = ${beta} is outside (0, 1); every beta must be`);
      }
    }
    this.betas = betas;
    this.predictionType = predictionType;
    this.alphasCumprod = new Float64Array(betas.length);
    this.logSnr = new Float64Array(betas.length);
    let product = 1;
    for (let t = 0; t < betas.length; t++) {
      product *= 1 - betas[t];
      this.alphasCumprod[t] = product;
      // log(ᾱ) − log1p(−ᾱ) keeps precision near ᾱ → 1 and ᾱ → 0
      this.logSnr[t] = Math.log(product) - Math.log1p(-product);
    }
  }

  /**
   * Builds the schedule a diffusers `scheduler_config.json` describes.
   *
   * @example
   * ```ts
   * import { NoiseSchedule } from "./schedule.ts";
   * const s = NoiseSchedule.fromConfig({ beta_schedule: "linear", num_train_timesteps: 10 });
   * console.assert(s.betas.length === 10);
   * ```
   */
  static fromConfig(config: SchedulerConfig, source = "scheduler_config.json"): NoiseSchedule {
    return new NoiseSchedule(betasFromConfig(config, source), predictionTypeOf(config, source));
  }

  /** Number of trained timesteps. */
  get length(): number {
    return this.betas.length;
  }

  /** The trained log-SNR range: [α of the last timestep, α of the first]. */
  get range(): LogSnrRange {
    return { min: this.logSnr[this.length - 1], max: this.logSnr[0] };
  }

  /**
   * The trained timestep whose α is nearest to `logSnr` (binary search on the decreasing table).
   * Values beyond the range map to the end timesteps.
   */
  nearestTimestep(logSnr: number): number {
    if (Number.isNaN(logSnr)) {
      throw new InvalidArgumentError("log-SNR is NaN; expected a number");
    }
    const table = this.logSnr;
    let lo = 0;
    let hi = table.length - 1;
    if (logSnr >= table[lo]) return lo;
    if (logSnr <= table[hi]) return hi;
    // invariant: table[lo] > logSnr > table[hi]
    while (hi - lo > 1) {
      const mid = (lo + hi) >> 1;
      if (table[mid] > logSnr) lo = mid;
      else hi = mid;
    }
    return table[lo] - logSnr <= logSnr - table[hi] ? lo : hi;
  }

  /** The α of the nearest trained timestep: the noise level the UNet really evaluates. */
  snapLogSnr(logSnr: number): number {
    return this.logSnr[this.nearestTimestep(logSnr)];
  }
}

/**
 * The betas of a diffusers scheduler config (`trained_betas` win over `beta_schedule`).
 *
 * @example
 * ```ts
 * import { betasFromConfig } from "./schedule.ts";
 * const b = betasFromConfig({ beta_schedule: "squaredcos_cap_v2", num_train_timesteps: 1000 });
 * console.assert(b[999] === 0.999);
 * ```
 */
export function betasFromConfig(
  config: SchedulerConfig,
  source = "scheduler_config.json",
): Float64Array {
  if (config.trained_betas != null) {
    if (!Array.isArray(config.trained_betas) || config.trained_betas.length < 2) {
      throw new ModelLoadError(`${source}: trained_betas must be an array of numbers`);
    }
    return Float64Array.from(config.trained_betas);
  }
  const n = config.num_train_timesteps ?? 1000;
  if (!Number.isInteger(n) || n < 2) {
    throw new ModelLoadError(`${source}: num_train_timesteps must be an integer ≥ 2, got ${n}`);
  }
  const kind = config.beta_schedule ?? "linear";
  const start = config.beta_start ?? 0.0001;
  const end = config.beta_end ?? 0.02;
  const betas = new Float64Array(n);
  switch (kind) {
    case "linear":
      for (let t = 0; t < n; t++) betas[t] = start + (t / (n - 1)) * (end - start);
      return betas;
    case "scaled_linear": {
      const a = Math.sqrt(start);
      const b = Math.sqrt(end);
      for (let t = 0; t < n; t++) betas[t] = (a + (t / (n - 1)) * (b - a)) ** 2;
      return betas;
    }
    case "squaredcos_cap_v2": {
      // Nichol & Dhariwal's cosine schedule with s = 0.008 and betas capped at 0.999 (diffusers)
      const abar = (u: number) => Math.cos(((u + 0.008) / 1.008) * Math.PI / 2) ** 2;
      for (let t = 0; t < n; t++) betas[t] = Math.min(1 - abar((t + 1) / n) / abar(t / n), 0.999);
      return betas;
    }
    default:
      throw new ModelLoadError(
        `${source}: beta_schedule "${kind}" is not supported; expected scaled_linear, linear, ` +
          `squaredcos_cap_v2 or trained_betas`,
      );
  }
}

function predictionTypeOf(config: SchedulerConfig, source: string): PredictionType {
  const type = config.prediction_type ?? "epsilon";
  if (type === "epsilon" || type === "v_prediction") return type;
  throw new ModelLoadError(
    `${source}: prediction_type "${type}" is not supported; expected epsilon or v_prediction`,
  );
}

/**
 * Converts a v-prediction into a noise prediction in place:
 * ε = sqrt(σ(α))·v + sqrt(σ(−α))·x_α, with σ(α) = ᾱ at the item's timestep.
 *
 * @example
 * ```ts
 * import { vToEpsilon } from "./schedule.ts";
 * // ᾱ = 0.5: ε = sqrt(.5)·v + sqrt(.5)·z
 * const out = vToEpsilon(new Float32Array([1]), new Float32Array([1]), [0.5], 1);
 * console.assert(Math.abs(out[0] - Math.SQRT2) < 1e-6);
 * ```
 */
export function vToEpsilon(
  v: Float32Array,
  noisy: Float32Array,
  alphasCumprod: readonly number[] | Float64Array,
  itemSize: number,
): Float32Array {
  for (let i = 0; i < alphasCumprod.length; i++) {
    const signal = Math.sqrt(alphasCumprod[i]);
    const noise = Math.sqrt(1 - alphasCumprod[i]);
    for (let j = i * itemSize; j < (i + 1) * itemSize; j++) {
      v[j] = signal * v[j] + noise * noisy[j];
    }
  }
  return v;
}
