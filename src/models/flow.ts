/**
 * Flow matching inside the one backend contract (issue 24, F1). A rectified-flow model (SD 3/3.5,
 * FLUX.1) noises as `x_t = (1−t)·x + t·ε` and its network predicts the velocity `v ≈ ε − x`.
 * Dividing `x_t` by `s = √((1−t)² + t²)` gives exactly the variance-preserving channel every
 * estimator reads, `x_α = √σ(α)·x + √σ(−α)·ε` with `α = 2·log((1−t)/t)`, and the noise the
 * estimators need is `ε̂ = x_t + (1−t)·v̂` (so `v̂ = (ε̂ − x_t)/(1−t)`).
 *
 * A flow backend therefore maps each query (α, x_α) to its own `t = σ(−α/2)` and `x_t = s·x_α`,
 * calls its network and returns ε̂ ({@link flowPredictNoise}): estimators, designs, proposals,
 * standard errors and studies stay as they are. Its {@link FlowConvention} (`Denoiser.flow`) says
 * what it was trained on — the training law of t, from which the default log-SNR proposal comes,
 * and the trained range, never t = 0 or 1 — and how its scheduler steps (the shift, FLUX's
 * resolution-dependent shift), which the flow ODE of src/generation follows.
 *
 * For a backend: build the convention with {@link flowConvention} from the folder's
 * scheduler_config.json ({@link flowSchedulerConfig}); FLUX passes its packed token count
 * (`imageSeqLen`) and `lastSigma: "1/steps"` (its pipeline's sigmas); set `logSnrRange` to
 * {@link flowLogSnrRange} of it (the conformance suite checks); run `predictNoise` through
 * {@link flowPredictNoise}, with the network's {@link FlowLayout} when its sample is not the latent.
 *
 * Pure functions; no runtime imports (every layer above may import this file).
 *
 * @module
 */
import { InvalidArgumentError, ModelRuntimeError } from "../errors.ts";
import type { LogSnrRange } from "../numerics/log-snr.ts";

/**
 * The law the model's training drew t from: `logit u ~ N(mean, std²)` (SD3's "logit-normal"),
 * then `t = shift·u / (1 + (shift−1)·u)`. In log-SNR that is exactly Gaussian:
 * `α = −2·(logit u + log shift) ~ N(−2·(mean + log shift), (2·std)²)` ({@link trainingLawLogSnr}).
 */
export interface FlowTrainingLaw {
  /** the family of the law (SD3 paper: "rf/lognorm") */
  readonly kind: "logit-normal";
  /** mean of logit u */
  readonly mean: number;
  /** standard deviation of logit u, > 0 */
  readonly std: number;
  /** the time shift applied to u (1: none; FLUX: e^μ of its image size) */
  readonly shift: number;
}

/**
 * What a `FlowMatchEulerDiscreteScheduler`'s `scheduler_config.json` says about stepping (diffusers'
 * names in camel case): the static `shift`, or FLUX's resolution-dependent shift
 * `μ = calculate_shift(image_seq_len, base_image_seq_len, max_image_seq_len, base_shift, max_shift)`
 * applied as `t ↦ e^μ / (e^μ + 1/t − 1)`.
 */
export interface FlowScheduler {
  /** the static shift (diffusers' default 1.0; SD3 3.0) */
  readonly shift: number;
  /** whether the shift depends on the image's token count (FLUX: true) */
  readonly useDynamicShifting: boolean;
  /** μ at `baseImageSeqLen` tokens (diffusers' default 0.5) */
  readonly baseShift?: number;
  /** μ at `maxImageSeqLen` tokens (diffusers' default 1.15) */
  readonly maxShift?: number;
  /** token count of `baseShift` (default 256) */
  readonly baseImageSeqLen?: number;
  /** token count of `maxShift` (default 4096) */
  readonly maxImageSeqLen?: number;
  /** trained timesteps (default 1000): the trained t are `k / numTrainTimesteps`, shifted */
  readonly numTrainTimesteps?: number;
}

/** A flow model's convention: how it was trained and how its scheduler steps (`Denoiser.flow`). */
export interface FlowConvention {
  /** the training law of t: sets the default log-SNR proposal */
  readonly trainingLaw: FlowTrainingLaw;
  /**
   * the scheduler's grid of t, both ends strictly inside (0, 1): t = 0 or 1 is never evaluated.
   * The flow ODE steps over it; the estimators' trained range is the part of it where the
   * training law has its bulk ({@link flowLogSnrRange})
   */
  readonly tRange: readonly [tMin: number, tMax: number];
  /** the scheduler's stepping (scheduler_config.json) */
  readonly scheduler: FlowScheduler;
  /**
   * the image's token count the resolution-dependent shift reads (FLUX: (h/2)·(w/2) of the
   * latent, the packed tokens); required when `scheduler.useDynamicShifting`
   */
  readonly imageSeqLen?: number;
  /**
   * the pipeline's last unshifted sigma, which sets the generation schedule: "scheduler" (default;
   * SD3's pipelines call `set_timesteps(steps)`, linspace from 1 to the scheduler's σ_min) or
   * "1/steps" (FLUX's pipelines pass `sigmas = linspace(1, 1/steps, steps)`)
   */
  readonly lastSigma?: "scheduler" | "1/steps";
}

/**
 * The flow time of a log-SNR: t = σ(−α/2) = 1/(1 + e^(α/2)), computed without overflow.
 *
 * @example
 * ```ts
 * import { flowTime } from "./flow.ts";
 * console.assert(flowTime(0) === 0.5 && Math.abs(flowTime(2 * Math.log(3)) - 0.25) < 1e-15);
 * ```
 */
export function flowTime(logSnr: number): number {
  const h = logSnr / 2;
  return h >= 0 ? Math.exp(-h) / (1 + Math.exp(-h)) : 1 / (1 + Math.exp(h));
}

/**
 * The log-SNR of a flow time: α = 2·log((1−t)/t).
 *
 * @example
 * ```ts
 * import { flowLogSnr } from "./flow.ts";
 * console.assert(Math.abs(flowLogSnr(0.25) - 2 * Math.log(3)) < 1e-15);
 * ```
 */
export function flowLogSnr(t: number): number {
  return 2 * (Math.log1p(-t) - Math.log(t));
}

/**
 * The scale s = √((1−t)² + t²) that maps the VP state to the flow state: x_t = s·x_α.
 *
 * @example
 * ```ts
 * import { flowScale } from "./flow.ts";
 * console.assert(flowScale(0) === 1 && Math.abs(flowScale(0.5) - Math.SQRT1_2) < 1e-15);
 * ```
 */
export function flowScale(t: number): number {
  return Math.hypot(1 - t, t);
}

/**
 * ε̂ = x_t + (1−t)·v̂, elementwise (one item; for a batch call it per item); `out` may be `v`
 * (in place).
 *
 * @example
 * ```ts
 * import { noiseFromVelocity } from "./flow.ts";
 * const eps = noiseFromVelocity(new Float32Array([1]), new Float32Array([2]), 0.25);
 * console.assert(eps[0] === 2.5);
 * ```
 */
export function noiseFromVelocity(
  xt: Float32Array,
  v: Float32Array,
  t: number,
  out: Float32Array = new Float32Array(xt.length),
): Float32Array {
  const keep = 1 - t;
  for (let j = 0; j < xt.length; j++) out[j] = xt[j] + keep * v[j];
  return out;
}

/**
 * v̂ = (ε̂ − x_t)/(1−t), elementwise: the velocity a noise prediction implies (t < 1).
 *
 * @example
 * ```ts
 * import { velocityFromNoise } from "./flow.ts";
 * const v = velocityFromNoise(new Float32Array([1]), new Float32Array([2.5]), 0.25);
 * console.assert(v[0] === 2);
 * ```
 */
export function velocityFromNoise(
  xt: Float32Array,
  eps: Float32Array,
  t: number,
  out: Float32Array = new Float32Array(xt.length),
): Float32Array {
  const inverse = 1 / (1 - t);
  for (let j = 0; j < xt.length; j++) out[j] = (eps[j] - xt[j]) * inverse;
  return out;
}

/**
 * How far from its mean a flow model's trained log-SNR range reaches, in standard deviations of
 * its training law: Φ⁻¹(0.999), so the range holds the law's central 99.8 %. The law is Gaussian in
 * α and puts no bound of its own; the scheduler's grid (t ∈ [1/1000, 999/1000], α ∈ ±13.8 at shift 1)
 * reaches where logit-normal(0, 1) draws about one t in 500,000, and there a trained network's ε̂ =
 * x_t + (1 − t)·v̂ carries the velocity's errors: on shapes-flow the integrand of every word, "a"
 * included, doubles with each unit of α above α ≈ 4, so ±13.8 made its per-word information ten
 * times that over ±6.2, most of it on the background (docs/performance.md, "Binding"). At shift 1
 * the range is ±6.18, as wide as SD's trained [−5.36, 7.07].
 */
export const TRAINED_LAW_DEVIATIONS = 3.090232306167813;

/**
 * A flow model's trained log-SNR range: the central 99.8 % of its training law in α (mean ±
 * {@link TRAINED_LAW_DEVIATIONS} standard deviations), within the scheduler's grid
 * [α(tMax), α(tMin)]. The estimators integrate over it and refuse α beyond it unless
 * `allowOutsideTrainedRange`; the flow ODE still steps over the whole grid (`tRange`).
 *
 * @example
 * ```ts
 * import { flowLogSnrRange } from "./flow.ts";
 * const law = { kind: "logit-normal", mean: 0, std: 1, shift: 1 } as const;
 * const scheduler = { shift: 1, useDynamicShifting: false };
 * const wide = flowLogSnrRange({ trainingLaw: law, tRange: [0.001, 0.999], scheduler });
 * console.assert(Math.abs(wide.max - 6.180464612335626) < 1e-12 && wide.min === -wide.max);
 * // a grid narrower than the law's bulk bounds it
 * const grid = flowLogSnrRange({ trainingLaw: law, tRange: [0.25, 0.75], scheduler });
 * console.assert(Math.abs(grid.max - 2 * Math.log(3)) < 1e-12);
 * ```
 */
export function flowLogSnrRange(convention: FlowConvention): LogSnrRange {
  const [tMin, tMax] = checkFlowConvention(convention).tRange;
  const { mean, std } = trainingLawLogSnr(convention.trainingLaw);
  const reach = TRAINED_LAW_DEVIATIONS * std;
  const min = Math.max(flowLogSnr(tMax), mean - reach);
  const max = Math.min(flowLogSnr(tMin), mean + reach);
  if (!(min < max)) {
    throw new InvalidArgumentError(
      `flow training law ${JSON.stringify(convention.trainingLaw)} puts its central 99.8 % at ` +
        `α ∈ [${mean - reach}, ${mean + reach}], outside the scheduler's t ∈ [${tMin}, ${tMax}]; ` +
        `expected a law whose bulk lies within the trained times`,
    );
  }
  return { min, max };
}

/**
 * The training law in log-SNR: α = −2·(logit u + log shift) ~ N(mean, std²) with
 * mean = −2·(law.mean + log shift), std = 2·law.std.
 *
 * @example
 * ```ts
 * import { trainingLawLogSnr } from "./flow.ts";
 * const { mean, std } = trainingLawLogSnr({ kind: "logit-normal", mean: 0, std: 1, shift: 3 });
 * console.assert(Math.abs(mean + 2 * Math.log(3)) < 1e-15 && std === 2);
 * ```
 */
export function trainingLawLogSnr(law: FlowTrainingLaw): { mean: number; std: number } {
  return { mean: -2 * (law.mean + Math.log(law.shift)), std: 2 * law.std };
}

/**
 * diffusers' `calculate_shift` (pipeline_flux.py): μ linear in the image's token count, through
 * (base_seq_len, base_shift) and (max_seq_len, max_shift).
 *
 * @example
 * ```ts
 * import { calculateShift } from "./flow.ts";
 * console.assert(Math.abs(calculateShift(256) - 0.5) < 1e-12 && Math.abs(calculateShift(4096) - 1.15) < 1e-12);
 * ```
 */
export function calculateShift(
  imageSeqLen: number,
  baseSeqLen = 256,
  maxSeqLen = 4096,
  baseShift = 0.5,
  maxShift = 1.15,
): number {
  const m = (maxShift - baseShift) / (maxSeqLen - baseSeqLen);
  return imageSeqLen * m + baseShift - m * baseSeqLen;
}

/**
 * The shift a scheduler applies to t: its static `shift`, or e^μ of the image's token count when it
 * shifts by resolution (diffusers' exponential `time_shift(μ, 1, t)` is the shift e^μ).
 *
 * @throws {InvalidArgumentError} dynamic shifting without an image token count
 *
 * @example
 * ```ts
 * import { schedulerShift } from "./flow.ts";
 * console.assert(schedulerShift({ shift: 3, useDynamicShifting: false }) === 3);
 * const flux = { shift: 3, useDynamicShifting: true, baseShift: 0.5, maxShift: 1.15 };
 * console.assert(Math.abs(schedulerShift(flux, 4096) - Math.exp(1.15)) < 1e-12);
 * ```
 */
export function schedulerShift(scheduler: FlowScheduler, imageSeqLen?: number): number {
  if (!scheduler.useDynamicShifting) return scheduler.shift;
  if (!(Number.isInteger(imageSeqLen) && imageSeqLen! > 0)) {
    throw new InvalidArgumentError(
      `a scheduler with use_dynamic_shifting needs the image's token count (imageSeqLen) for its ` +
        `resolution-dependent shift, got ${imageSeqLen}; expected a positive integer`,
    );
  }
  return Math.exp(calculateShift(
    imageSeqLen!,
    scheduler.baseImageSeqLen ?? 256,
    scheduler.maxImageSeqLen ?? 4096,
    scheduler.baseShift ?? 0.5,
    scheduler.maxShift ?? 1.15,
  ));
}

/**
 * The shifted time t' = shift·t / (1 + (shift−1)·t) (diffusers' static shift; with shift = e^μ
 * also its exponential time shift).
 *
 * @example
 * ```ts
 * import { shiftTime } from "./flow.ts";
 * console.assert(shiftTime(0.5, 3) === 0.75 && shiftTime(1, 3) === 1);
 * ```
 */
export function shiftTime(t: number, shift: number): number {
  return (shift * t) / (1 + (shift - 1) * t);
}

/**
 * A flow convention from a scheduler: the grid is the scheduler's trained times `shift(k/N)`,
 * k = 1…N−1 (the pure-noise t = 1 left out: its α is −∞), and the training law is
 * logit-normal(0, 1) shifted as the scheduler shifts (SD3's default and the SD3 paper's best;
 * FLUX's own training is unpublished) unless given.
 *
 * @example
 * ```ts
 * import { flowConvention, flowLogSnrRange } from "./flow.ts";
 * const sd3 = flowConvention({ shift: 3, useDynamicShifting: false });
 * console.assert(sd3.trainingLaw.shift === 3 && sd3.tRange[1] < 1 && sd3.tRange[0] > 0);
 * // the central 99.8 % of its law, N(−2·log 3, 2²) in α
 * const { min, max } = flowLogSnrRange(sd3);
 * console.assert(Math.abs(max + 2 * Math.log(3) - 6.180464612335626) < 1e-12 && min > -9);
 * ```
 */
export function flowConvention(
  scheduler: FlowScheduler,
  options: {
    readonly imageSeqLen?: number;
    readonly trainingLaw?: Partial<FlowTrainingLaw>;
    readonly lastSigma?: "scheduler" | "1/steps";
  } = {},
): FlowConvention {
  const shift = schedulerShift(scheduler, options.imageSeqLen);
  const n = scheduler.numTrainTimesteps ?? 1000;
  return checkFlowConvention({
    trainingLaw: { kind: "logit-normal", mean: 0, std: 1, shift, ...options.trainingLaw },
    tRange: [shiftTime(1 / n, shift), shiftTime(1 - 1 / n, shift)],
    scheduler,
    ...(options.imageSeqLen === undefined ? {} : { imageSeqLen: options.imageSeqLen }),
    ...(options.lastSigma === undefined ? {} : { lastSigma: options.lastSigma }),
  });
}

/**
 * Reads the stepping of a `FlowMatchEulerDiscreteScheduler` (or `FlowMatchHeunDiscreteScheduler`)
 * from a parsed scheduler_config.json, with diffusers' defaults for absent keys.
 *
 * @throws {InvalidArgumentError} another scheduler class, or a value of the wrong type
 *
 * @example
 * ```ts
 * import { flowSchedulerConfig } from "./flow.ts";
 * const s = flowSchedulerConfig({ _class_name: "FlowMatchEulerDiscreteScheduler", shift: 3.0 });
 * console.assert(s.shift === 3 && !s.useDynamicShifting && s.numTrainTimesteps === 1000);
 * ```
 */
export function flowSchedulerConfig(config: Record<string, unknown>): FlowScheduler {
  const name = config._class_name;
  if (typeof name === "string" && !/^FlowMatch(Euler|Heun)DiscreteScheduler$/.test(name)) {
    throw new InvalidArgumentError(
      `scheduler "${name}" is not a flow-matching scheduler; expected ` +
        `FlowMatchEulerDiscreteScheduler or FlowMatchHeunDiscreteScheduler`,
    );
  }
  const number = (key: string, fallback: number) => {
    const value = config[key] ?? fallback;
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new InvalidArgumentError(
        `scheduler_config.json: ${key} is ${JSON.stringify(value)}; expected a finite number`,
      );
    }
    return value;
  };
  const dynamic = config.use_dynamic_shifting ?? false;
  if (typeof dynamic !== "boolean") {
    throw new InvalidArgumentError(
      `scheduler_config.json: use_dynamic_shifting is ${
        JSON.stringify(dynamic)
      }; expected true or false`,
    );
  }
  const unsupported = [
    "shift_terminal",
    "use_karras_sigmas",
    "use_exponential_sigmas",
    "use_beta_sigmas",
    "invert_sigmas",
    "stochastic_sampling",
  ].filter((key) => !!config[key]);
  if (unsupported.length > 0 || (config.time_shift_type ?? "exponential") !== "exponential") {
    throw new InvalidArgumentError(
      `scheduler_config.json sets ${[...unsupported, "time_shift_type"].join(", ")}; infodiff's ` +
        `flow ODE follows the plain shifted schedule (exponential time shift), expected them unset`,
    );
  }
  return {
    shift: number("shift", 1),
    useDynamicShifting: dynamic,
    baseShift: number("base_shift", 0.5),
    maxShift: number("max_shift", 1.15),
    baseImageSeqLen: number("base_image_seq_len", 256),
    maxImageSeqLen: number("max_image_seq_len", 4096),
    numTrainTimesteps: number("num_train_timesteps", 1000),
  };
}

/**
 * Throws unless a convention is well formed: a logit-normal law with std > 0 and shift > 0, and
 * 0 < tMin < tMax < 1. Returns it.
 *
 * @example
 * ```ts
 * import { checkFlowConvention } from "./flow.ts";
 * checkFlowConvention({ trainingLaw: { kind: "logit-normal", mean: 0, std: 1, shift: 1 },
 *   tRange: [0.001, 0.999], scheduler: { shift: 1, useDynamicShifting: false } });
 * ```
 */
export function checkFlowConvention(convention: FlowConvention): FlowConvention {
  const law = convention?.trainingLaw;
  if (
    law?.kind !== "logit-normal" || !Number.isFinite(law.mean) || !(law.std > 0) ||
    !Number.isFinite(law.std) || !(law.shift > 0) || !Number.isFinite(law.shift)
  ) {
    throw new InvalidArgumentError(
      `flow training law ${JSON.stringify(law)}: expected { kind: "logit-normal", mean, std > 0, ` +
        `shift > 0 } with finite numbers`,
    );
  }
  const [tMin, tMax] = convention.tRange ?? [];
  if (!(tMin > 0 && tMin < tMax && tMax < 1)) {
    throw new InvalidArgumentError(
      `flow trained range t ∈ [${tMin}, ${tMax}]: expected 0 < tMin < tMax < 1 (t = 0 and t = 1 ` +
        `are never evaluated: their log-SNR is ±∞)`,
    );
  }
  const { shift, useDynamicShifting } = convention.scheduler ?? {};
  if (!(shift > 0) || typeof useDynamicShifting !== "boolean") {
    throw new InvalidArgumentError(
      `flow scheduler ${JSON.stringify(convention.scheduler)}: expected shift > 0 and ` +
        `useDynamicShifting true or false`,
    );
  }
  if (useDynamicShifting) schedulerShift(convention.scheduler, convention.imageSeqLen);
  const last = convention.lastSigma;
  if (last !== undefined && last !== "scheduler" && last !== "1/steps") {
    throw new InvalidArgumentError(
      `flow lastSigma ${JSON.stringify(last)}: expected "scheduler" or "1/steps"`,
    );
  }
  return convention;
}

/** One flow-coordinate request: each item's x_t (item-major), t and condition. */
export interface FlowBatch<C> {
  /** x_t = s·x_α per item, item-major, in the network's layout ({@link FlowLayout}) */
  readonly xt: Float32Array;
  /** t of each item, strictly inside (0, 1) */
  readonly t: Float64Array;
  /** each item's condition */
  readonly conditions: readonly C[];
}

/**
 * How a network lays out one item's values when it is not as the latent's [C, H, W] (FLUX.1's
 * transformer takes 2×2 patches packed into tokens). {@link flowPredictNoise} writes x_t straight
 * into this layout and reads ε̂ straight out of it, so the layout costs no pass of its own.
 */
export interface FlowLayout {
  /** `out` (the network's layout) ← `scale`·`latent` (one item; every value written) */
  toNetwork(latent: Float32Array, scale: number, out: Float32Array): void;
  /**
   * `out` (the latent layout) ← `xt` + `keep`·`v`, both in the network's layout (one item; every
   * value written; `out` is neither of the others)
   */
  fromNetwork(xt: Float32Array, v: Float32Array, keep: number, out: Float32Array): void;
}

/** Where {@link flowPredictNoise} writes: the network's layout, and buffers it may reuse. */
export interface FlowBuffers {
  /** the network's layout of an item (default: the latent's own) */
  readonly layout?: FlowLayout;
  /**
   * a buffer of `length` values that the call may use until it returns (x_t; with a layout, one
   * item's v̂ too), e.g. from a pool; default: a new one each time
   */
  readonly scratch?: (length: number) => Float32Array;
}

/**
 * The one conversion of a flow backend's `predictNoise`: maps each item's (α, x_α) to
 * t = σ(−α/2) and x_t = s·x_α, asks `velocity` for v̂ (item-major, as many values as x_t) and
 * returns ε̂ = x_t + (1−t)·v̂. An α that is not finite (t = 0 or 1) is refused, and a prediction
 * that is not finite too, unless the batch says its caller checks (`finiteChecked`).
 *
 * ε̂ is written over v̂ and that array is returned: `velocity` hands over an array of its own (not
 * x_t, nothing it reads later). x_t goes into `buffers.scratch` and in the network's layout
 * (`buffers.layout`), so at a megabyte per item (SD 3's and FLUX.1's latents) a call allocates
 * nothing and passes over each item's values once each way.
 *
 * @throws {InvalidArgumentError} a log-SNR that is not finite, or a batch whose parts disagree
 * @throws {ModelRuntimeError} a velocity of the wrong length, or a non-finite prediction
 *
 * @example
 * ```ts
 * import { flowPredictNoise } from "./flow.ts";
 * // data x ≡ 0: x_t = t·ε, so v = ε = x_t / t and ε̂ = x_t / t; at α = 0, t = ½ and x_t = x_α/√2
 * const eps = await flowPredictNoise(
 *   { noisy: new Float32Array([1]), logSnr: new Float64Array([0]), conditions: [null] },
 *   ({ xt, t }) => Promise.resolve(Float32Array.from(xt, (x, i) => x / t[i])),
 * );
 * console.assert(Math.abs(eps[0] - Math.SQRT2) < 1e-6);
 * ```
 */
export async function flowPredictNoise<C>(
  batch: {
    readonly noisy: Float32Array;
    readonly logSnr: Float64Array;
    readonly conditions: readonly C[];
    readonly finiteChecked?: boolean;
  },
  velocity: (flow: FlowBatch<C>) => Promise<Float32Array>,
  buffers: FlowBuffers = {},
): Promise<Float32Array> {
  const size = batch.logSnr.length, d = batch.noisy.length / size;
  if (batch.conditions.length !== size || !Number.isInteger(d) || size === 0) {
    throw new InvalidArgumentError(
      `batch has ${size} log-SNR values, ${batch.conditions.length} conditions and ` +
        `${batch.noisy.length} noisy values; expected one condition per item and the same number ` +
        `of values for each`,
    );
  }
  const { layout, scratch = (length: number) => new Float32Array(length) } = buffers;
  const t = new Float64Array(size), xt = scratch(batch.noisy.length);
  for (let i = 0; i < size; i++) {
    if (!Number.isFinite(batch.logSnr[i])) {
      throw new InvalidArgumentError(
        `item ${i}: log-SNR ${batch.logSnr[i]} is t = ${flowTime(batch.logSnr[i])}; a flow model ` +
          `is never evaluated at t = 0 or 1, expected a finite log-SNR`,
      );
    }
    t[i] = flowTime(batch.logSnr[i]);
    const s = flowScale(t[i]);
    const from = i * d, to = from + d;
    if (layout) layout.toNetwork(batch.noisy.subarray(from, to), s, xt.subarray(from, to));
    else scaleInto(batch.noisy.subarray(from, to), s, xt.subarray(from, to));
  }
  const v = await velocity({ xt, t, conditions: batch.conditions });
  if (v.length !== xt.length) {
    throw new ModelRuntimeError(
      `the velocity of ${size} items has ${v.length} values, expected ${xt.length} (as x_t)`,
    );
  }
  // ε̂ over v̂: in place elementwise, or through one item's copy of v̂ when the layouts differ
  const item = layout ? scratch(d) : undefined;
  for (let i = 0; i < size; i++) {
    const from = i * d, to = from + d, eps = v.subarray(from, to);
    if (item) {
      item.set(eps);
      layout!.fromNetwork(xt.subarray(from, to), item, 1 - t[i], eps);
    } else noiseFromVelocity(xt.subarray(from, to), eps, t[i], eps);
    const bad = batch.finiteChecked ? -1 : firstNonFinite(eps);
    if (bad >= 0) {
      throw new ModelRuntimeError(
        `the noise prediction of item ${i} (α ${batch.logSnr[i]}, t ${t[i]}) holds ${eps[bad]} ` +
          `at ${bad}; expected finite values from finite inputs`,
      );
    }
  }
  return v;
}

// The passes over each item are functions of their own: a loop nested in flowPredictNoise's loop
// over items ran on V8's on-stack-replaced code, thrown away at the end of an item (--trace-deopt:
// "exit from OSR'd inner loop", again and again at a megabyte per item).

/** out = scale·values (one item, the latent layout). */
function scaleInto(values: Float32Array, scale: number, out: Float32Array): void {
  for (let j = 0; j < values.length; j++) out[j] = scale * values[j];
}

/** The index of the first value that is not finite, or −1. */
function firstNonFinite(values: Float32Array): number {
  for (let j = 0; j < values.length; j++) if (!Number.isFinite(values[j])) return j;
  return -1;
}
