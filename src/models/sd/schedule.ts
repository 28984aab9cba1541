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
  /** diffusers' Lin et al. (2024) rescaling to zero terminal SNR */
  readonly rescale_betas_zero_snr?: boolean;
  /** how inference steps are spread over the trained timesteps (DDIM): leading, trailing, linspace */
  readonly timestep_spacing?: string;
  /** added to every "leading" inference timestep (Stable Diffusion's configs: 1) */
  readonly steps_offset?: number;
}

/** How DDIM's inference timesteps are spread over the trained ones (diffusers' names). */
export type TimestepSpacing = "leading" | "trailing" | "linspace";

/** How a schedule picks inference timesteps. */
export interface InferenceSpacing {
  /** diffusers' `timestep_spacing` (default "leading", as DDIMScheduler) */
  readonly timestepSpacing: TimestepSpacing;
  /** diffusers' `steps_offset` (default 0, as DDIMScheduler; SD's configs set 1) */
  readonly stepsOffset: number;
}

/**
 * ᾱ of the last timestep of a schedule rescaled to zero terminal SNR: 2⁻²⁴ instead of 0, as
 * diffusers' Euler schedulers set it, so the log-SNR stays finite (−16.6).
 */
export const ZERO_SNR_TERMINAL_ALPHA_BAR = 2 ** -24;

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

  /** how DDIM picks its inference timesteps (see {@link NoiseSchedule.inferenceTimesteps}) */
  readonly spacing: InferenceSpacing;

  /**
   * Builds the tables from the betas.
   *
   * @param betas one β per timestep, each in (0, 1)
   * @param predictionType what the UNet predicts
   * @param spacing how DDIM picks inference timesteps (default diffusers' DDIMScheduler's)
   */
  constructor(
    betas: Float64Array,
    predictionType: PredictionType = "epsilon",
    spacing: InferenceSpacing = { timestepSpacing: "leading", stepsOffset: 0 },
  ) {
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
    this.spacing = spacing;
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
    return new NoiseSchedule(
      betasFromConfig(config, source),
      predictionTypeOf(config, source),
      spacingOf(config, source),
    );
  }

  /**
   * The trained timesteps a `steps`-step DDIM run visits, ascending (least noise first), exactly as
   * diffusers' DDIMScheduler.set_timesteps picks them: "leading" k·⌊T/steps⌋ + steps_offset,
   * "trailing" round(T − k·T/steps) − 1, "linspace" round(linspace(0, T − 1, steps)), with
   * numpy's round-half-to-even.
   *
   * @example
   * ```ts
   * import { NoiseSchedule } from "./schedule.ts";
   * const s = NoiseSchedule.fromConfig({ timestep_spacing: "trailing" });
   * console.assert(s.inferenceTimesteps(10).join() === "99,199,299,399,499,599,699,799,899,999");
   * ```
   */
  inferenceTimesteps(steps: number): Int32Array {
    const T = this.length;
    if (!Number.isInteger(steps) || steps < 1 || steps > T) {
      throw new InvalidArgumentError(`steps must be an integer in 1…${T}, got ${steps}`);
    }
    const { timestepSpacing, stepsOffset } = this.spacing;
    let timesteps: number[];
    if (timestepSpacing === "linspace") {
      timesteps = Array.from(
        { length: steps },
        (_, k) => roundHalfEven(steps === 1 ? 0 : (k * (T - 1)) / (steps - 1)),
      );
    } else if (timestepSpacing === "trailing") {
      const ratio = T / steps;
      timesteps = Array.from({ length: steps }, (_, k) => roundHalfEven(T - k * ratio) - 1)
        .reverse();
    } else {
      const ratio = Math.floor(T / steps);
      timesteps = Array.from({ length: steps }, (_, k) => k * ratio + stepsOffset);
    }
    const last = timesteps[timesteps.length - 1];
    if (last > T - 1 || timesteps[0] < 0) {
      throw new InvalidArgumentError(
        `${steps} ${timestepSpacing} steps with steps_offset ${stepsOffset} reach timestep ${last}, ` +
          `past the ${T} trained ones (0…${T - 1}); use fewer steps`,
      );
    }
    return Int32Array.from(timesteps);
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
  const rescale = config.rescale_betas_zero_snr ?? false;
  if (typeof rescale !== "boolean") {
    throw new ModelLoadError(
      `${source}: rescale_betas_zero_snr must be true or false, got ${JSON.stringify(rescale)}`,
    );
  }
  const betas = configuredBetas(config, source);
  return rescale ? rescaleZeroTerminalSnr(betas) : betas;
}

/**
 * Lin et al. (2024), Algorithm 1, as diffusers' `rescale_zero_terminal_snr`: √ᾱ shifted so the
 * last timestep's is 0 and scaled so the first keeps its value. The last ᾱ is then set to
 * {@link ZERO_SNR_TERMINAL_ALPHA_BAR} instead of 0 (diffusers' Euler schedulers do the same), so
 * that every trained timestep has a finite log-SNR.
 *
 * @example
 * ```ts
 * import { NoiseSchedule, rescaleZeroTerminalSnr, ZERO_SNR_TERMINAL_ALPHA_BAR } from "./schedule.ts";
 * const base = NoiseSchedule.fromConfig({ beta_schedule: "scaled_linear", beta_start: 0.00085, beta_end: 0.012 });
 * const rescaled = new NoiseSchedule(rescaleZeroTerminalSnr(base.betas));
 * console.assert(Math.abs(rescaled.alphasCumprod[0] - base.alphasCumprod[0]) < 1e-15);
 * console.assert(Math.abs(rescaled.alphasCumprod[999] - ZERO_SNR_TERMINAL_ALPHA_BAR) < 1e-18);
 * ```
 */
export function rescaleZeroTerminalSnr(betas: Float64Array): Float64Array {
  const n = betas.length;
  const root = new Float64Array(n);
  let product = 1;
  for (let t = 0; t < n; t++) {
    product *= 1 - betas[t];
    root[t] = Math.sqrt(product);
  }
  const first = root[0], last = root[n - 1];
  const alphaBar = Float64Array.from(root, (r) => ((r - last) * first / (first - last)) ** 2);
  alphaBar[n - 1] = ZERO_SNR_TERMINAL_ALPHA_BAR;
  return Float64Array.from(alphaBar, (a, t) => 1 - (t === 0 ? a : a / alphaBar[t - 1]));
}

function configuredBetas(config: SchedulerConfig, source: string): Float64Array {
  if (config.trained_betas != null) {
    if (!Array.isArray(config.trained_betas) || config.trained_betas.length < 2) {
      throw new ModelLoadError(`${source}: trained_betas must be an array of numbers`);
    }
    config.trained_betas.forEach((beta, t) => betaInRange(beta, `trained_betas[${t}]`, source));
    return Float64Array.from(config.trained_betas);
  }
  const n = config.num_train_timesteps ?? 1000;
  if (!Number.isInteger(n) || n < 2) {
    throw new ModelLoadError(
      `${source}: num_train_timesteps must be an integer ≥ 2, got ${shown(n)}`,
    );
  }
  const kind = config.beta_schedule ?? "linear";
  const betas = new Float64Array(n);
  switch (kind) {
    case "linear": {
      const [start, end] = linearEnds(config, source);
      for (let t = 0; t < n; t++) betas[t] = start + (t / (n - 1)) * (end - start);
      return betas;
    }
    case "scaled_linear": {
      const [start, end] = linearEnds(config, source);
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

/**
 * beta_start and beta_end of a (scaled) linear schedule, each checked by name: a negative start
 * would otherwise surface only as "beta_0 = NaN" (its square root) from the constructor.
 */
function linearEnds(config: SchedulerConfig, source: string): [number, number] {
  return [
    betaInRange(config.beta_start ?? 0.0001, "beta_start", source),
    betaInRange(config.beta_end ?? 0.02, "beta_end", source),
  ];
}

/** `value` if it is a number in (0, 1), else a {@link ModelLoadError} naming the field and value. */
function betaInRange(value: unknown, field: string, source: string): number {
  if (typeof value === "number" && value > 0 && value < 1) return value;
  throw new ModelLoadError(
    `${source}: ${field} must be a number in (0, 1), got ${shown(value)}`,
  );
}

/** A config value as written: numbers as numbers (NaN too), anything else as JSON ("1000"). */
function shown(value: unknown): string {
  return typeof value === "number" ? String(value) : JSON.stringify(value) ?? String(value);
}

function spacingOf(config: SchedulerConfig, source: string): InferenceSpacing {
  const timestepSpacing = config.timestep_spacing ?? "leading";
  if (!["leading", "trailing", "linspace"].includes(timestepSpacing)) {
    throw new ModelLoadError(
      `${source}: timestep_spacing "${timestepSpacing}" is not supported; expected leading, ` +
        `trailing or linspace`,
    );
  }
  const stepsOffset = config.steps_offset ?? 0;
  if (!Number.isInteger(stepsOffset) || stepsOffset < 0) {
    throw new ModelLoadError(
      `${source}: steps_offset must be an integer ≥ 0, got ${JSON.stringify(config.steps_offset)}`,
    );
  }
  return { timestepSpacing: timestepSpacing as TimestepSpacing, stepsOffset };
}

/** numpy's round: halves go to the even neighbour. */
function roundHalfEven(x: number): number {
  const floor = Math.floor(x), fraction = x - floor;
  if (fraction !== 0.5) return Math.round(x);
  return floor % 2 === 0 ? floor : floor + 1;
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
