/**
 * The exact oracle: a Gaussian mixture whose components carry words. Its posterior-mean denoiser,
 * log-density and samples are all closed-form, so every estimator can be checked against the truth.
 *
 * @module
 */
import { InvalidArgumentError, ModelRuntimeError, PromptError } from "../errors.ts";
import { Random } from "../numerics/random.ts";
import { sigmoid } from "../numerics/log-snr.ts";
import { createHash } from "node:crypto";
import type {
  Condition,
  Denoiser,
  ImageInput,
  ModelIdentity,
  NoiseBatch,
  Shape,
} from "./denoiser.ts";
import { checkModelData, imageArray, shapeSize } from "./denoiser.ts";
import { promptWords } from "../text/prompt.ts";

/** One isotropic Gaussian component N(mean, variance·I) and the words it carries. */
export interface MixtureComponent {
  /** the words a prompt may contain to select this component (case-insensitive) */
  readonly words: readonly string[];
  /** the component mean, length c·h·w (CHW order) */
  readonly mean: ArrayLike<number>;
  /** the per-dimension variance, > 0 */
  readonly variance: number;
  /** the unnormalised prior weight (default 1) */
  readonly weight?: number;
}

/** Specification of {@link mixtureModel}. */
export interface MixtureSpec {
  /** data shape (channels, height, width) */
  readonly shape: Shape;
  /** the components; at least one */
  readonly components: readonly MixtureComponent[];
  /** a name for display (default "mixture oracle") */
  readonly name?: string;
  /** items per predictNoise call the estimators should use (default 64) */
  readonly batchSize?: number;
}

/** The mixture restricted to a prompt: the indices of the components carrying all its known words. */
export interface MixtureCondition extends Condition {
  /** the prompt's words that some component carries (others are ignored) */
  readonly knownWords: readonly string[];
  /** indices of the components that carry every known word */
  readonly active: Int32Array;
  /** log prior weights of the active components, normalised over them */
  readonly logWeights: Float64Array;
}

/** Options of {@link MixtureModel.sample}. */
export interface SampleOptions {
  /** seed of the draw (default 0) */
  readonly seed?: number;
}

/** A {@link Denoiser} with exact log-densities and sampling. */
export interface MixtureDenoiser extends Denoiser {
  /** the validated components (words lower-cased) */
  readonly components: readonly Required<MixtureComponent>[];
  /** exact log p(x | prompt) in nats; `""` is the unconditional density */
  logDensity(x: Float32Array, prompt: string): number;
  /** a draw x ~ p(x | prompt) */
  sample(prompt: string, options?: SampleOptions): Float32Array;
  /** the prompt's words that condition the model */
  knownWords(prompt: string): string[];
  /** the condition of a prompt, synchronously (the oracle needs no encoder) */
  condition(prompt: string): MixtureCondition;
}

const LOG_2PI = Math.log(2 * Math.PI);

/**
 * Builds the exact mixture oracle's denoiser (`mixtureModel` in the query layer wraps it as a Model). A prompt conditions on the known words it contains: p(x | prompt)
 * is the mixture restricted to the components that carry all of them.
 *
 * @example
 * ```ts
 * import { mixtureDenoiser } from "./mixture.ts";
 * const model = mixtureDenoiser({
 *   shape: [1, 2, 2],
 *   components: [
 *     { words: ["red"], mean: [1, 1, 0, 0], variance: 0.1 },
 *     { words: ["blue"], mean: [0, 0, 1, 1], variance: 0.1 },
 *   ],
 * });
 * const x = model.sample("red", { seed: 1 });
 * console.assert(model.logDensity(x, "red") > model.logDensity(x, "blue"));
 * ```
 */
export function mixtureDenoiser(spec: MixtureSpec): MixtureDenoiser {
  const shape = checkShape(spec.shape);
  const d = shapeSize(shape);
  const components = checkComponents(spec.components, d);
  const means = components.map((c) => Float64Array.from(c.mean));
  const meanNorms = means.map((m) => m.reduce((s, v) => s + v * v, 0));
  const vocabulary = new Set(components.flatMap((c) => c.words));
  const conditions = new Map<string, MixtureCondition>();

  const knownWords = (prompt: string) =>
    [...new Set(promptWords(prompt).map((w) => w.word))].filter((w) => vocabulary.has(w));

  const condition = (prompt: string): MixtureCondition => {
    if (typeof prompt !== "string") {
      throw new InvalidArgumentError(`prompt must be a string, got ${typeof prompt}`);
    }
    const cached = conditions.get(prompt);
    if (cached) return cached;
    const known = knownWords(prompt);
    const active = components.flatMap((c, k) => known.every((w) => c.words.includes(w)) ? [k] : []);
    if (active.length === 0) {
      throw new PromptError(
        `no mixture component carries all of the words [${
          known.join(", ")
        }] of the prompt "${prompt}"; ` +
          `expected a prompt whose known words occur together in at least one component`,
      );
    }
    const total = active.reduce((s, k) => s + components[k].weight, 0);
    const logWeights = Float64Array.from(active, (k) => Math.log(components[k].weight / total));
    const result = { prompt, knownWords: known, active: Int32Array.from(active), logWeights };
    conditions.set(prompt, result);
    return result;
  };

  const checkData = (x: Float32Array, what: string) => checkModelData(shape, x, what);

  const name = spec.name ?? "mixture oracle";
  let identity: Promise<ModelIdentity> | undefined;
  const model: MixtureDenoiser = {
    name,
    shape,
    batchSize: spec.batchSize ?? 64,
    sharedLogSnr: false,
    components,
    knownWords,
    condition,
    // the executor turns a throw (a bad prompt) into a rejection
    encode: (prompt: string) => new Promise((resolve) => resolve(condition(prompt))),
    predictNoise(batch: NoiseBatch): Promise<Float32Array> {
      const size = checkBatch(batch, d);
      const out = new Float32Array(size * d);
      for (let item = 0; item < size; item++) {
        const cond = batch.conditions[item] as MixtureCondition;
        const z = batch.noisy.subarray(item * d, (item + 1) * d);
        const finite = posteriorNoise(
          z,
          batch.logSnr[item],
          cond,
          out.subarray(item * d, (item + 1) * d),
        );
        if (!finite) {
          return Promise.reject(
            new ModelRuntimeError(
              `${model.name}: the noise prediction of item ${item} (α ${batch.logSnr[item]}) is ` +
                `not finite; expected finite values from finite inputs`,
            ),
          );
        }
      }
      return Promise.resolve(out);
    },
    prepare(image: ImageInput): Promise<Float32Array> {
      // pixel space: pixels and model data are the same array, however it is tagged
      const array = imageArray(image)?.array ?? (image as Float32Array);
      return Promise.resolve(checkData(array, "mixture oracle image"));
    },
    logDensity(x: Float32Array, prompt: string): number {
      checkData(x, "logDensity");
      const cond = condition(prompt);
      const terms = Array.from(cond.active, (k, i) => {
        const v = components[k].variance;
        let sq = 0;
        for (let j = 0; j < d; j++) sq += (x[j] - means[k][j]) ** 2;
        return cond.logWeights[i] - 0.5 * d * (LOG_2PI + Math.log(v)) - sq / (2 * v);
      });
      return logSumExp(terms);
    },
    sample(prompt: string, options: SampleOptions = {}): Float32Array {
      const cond = condition(prompt);
      const random = new Random(options.seed ?? 0);
      let u = random.uniform(), pick = cond.active[cond.active.length - 1];
      for (let i = 0; i < cond.active.length; i++) {
        u -= Math.exp(cond.logWeights[i]);
        if (u <= 0) {
          pick = cond.active[i];
          break;
        }
      }
      const sd = Math.sqrt(components[pick].variance);
      const x = new Float32Array(d);
      for (let j = 0; j < d; j++) x[j] = means[pick][j] + sd * random.gaussian();
      return x;
    },
    identity: () => identity ??= Promise.resolve(mixtureIdentity(name, shape, components)),
    dispose: () => Promise.resolve(),
  };

  /**
   * Exact E[ε | z] under the restricted mixture: ε̂ = √(1−s)·Σ_k r_k (z − √s μ_k)/τ_k with
   * τ_k = s·v_k + 1 − s and responsibilities r_k ∝ π_k N(z; √s μ_k, τ_k I). Returns whether every
   * value is finite, checked in the loop that writes them (0·v is NaN exactly when v is not).
   */
  function posteriorNoise(
    z: Float32Array,
    logSnr: number,
    cond: MixtureCondition,
    out: Float32Array,
  ): boolean {
    const s = sigmoid(logSnr), rootS = Math.sqrt(s), rootNoise = Math.sqrt(1 - s);
    let zNorm = 0;
    for (let j = 0; j < d; j++) zNorm += z[j] * z[j];
    const n = cond.active.length;
    const logR = new Float64Array(n), tau = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const k = cond.active[i], mean = means[k];
      tau[i] = s * components[k].variance + 1 - s;
      let dot = 0;
      for (let j = 0; j < d; j++) dot += z[j] * mean[j];
      const sq = Math.max(0, zNorm - 2 * rootS * dot + s * meanNorms[k]);
      logR[i] = cond.logWeights[i] - 0.5 * d * Math.log(tau[i]) - sq / (2 * tau[i]);
    }
    const norm = logSumExp(logR);
    let zCoefficient = 0;
    const meanCoefficients = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const c = Math.exp(logR[i] - norm) / tau[i];
      zCoefficient += c;
      meanCoefficients[i] = c * rootS;
    }
    for (let j = 0; j < d; j++) out[j] = zCoefficient * z[j];
    for (let i = 0; i < n; i++) {
      const c = meanCoefficients[i];
      if (c < 1e-300) continue;
      const mean = means[cond.active[i]];
      for (let j = 0; j < d; j++) out[j] -= c * mean[j];
    }
    let check = 0;
    for (let j = 0; j < d; j++) {
      out[j] *= rootNoise;
      check += 0 * out[j];
    }
    return check === 0;
  }

  return model;
}

/**
 * log Σ exp(values), stable for large magnitudes.
 *
 * @example
 * ```ts
 * import { logSumExp } from "./mixture.ts";
 * console.assert(Math.abs(logSumExp([0, 0]) - Math.log(2)) < 1e-12);
 * ```
 */
export function logSumExp(values: ArrayLike<number>): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) max = Math.max(max, values[i]);
  if (max === -Infinity) return -Infinity;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i] - max);
  return max + Math.log(sum);
}

/** The oracle's identity: a SHA-256 over its shape and every component's words, weight, variance, mean. */
function mixtureIdentity(
  name: string,
  shape: Shape,
  components: readonly Required<MixtureComponent>[],
): ModelIdentity {
  const hash = createHash("sha256");
  hash.update(JSON.stringify({ shape }));
  for (const c of components) {
    hash.update(JSON.stringify({ words: c.words, weight: c.weight, variance: c.variance }));
    const mean = Float64Array.from(c.mean);
    hash.update(new Uint8Array(mean.buffer));
  }
  return { name, backend: "mixture oracle", sha256: hash.digest("hex") };
}

/** The number of items of a batch, after checking its parts agree; throws otherwise. */
function checkBatch(batch: NoiseBatch, d: number): number {
  const size = batch.logSnr.length;
  if (batch.conditions.length !== size || batch.noisy.length !== size * d) {
    throw new InvalidArgumentError(
      `batch has ${size} log-SNR values, ${batch.conditions.length} conditions and ` +
        `${batch.noisy.length} noisy values; expected ${size} conditions and ${size * d} values`,
    );
  }
  return size;
}

function checkShape(shape: Shape): Shape {
  if (
    !Array.isArray(shape) || shape.length !== 3 || !shape.every((n) => Number.isInteger(n) && n > 0)
  ) {
    throw new InvalidArgumentError(
      `shape must be [channels, height, width] of positive integers, got ${JSON.stringify(shape)}`,
    );
  }
  return Object.freeze([...shape]) as unknown as Shape;
}

function checkComponents(
  components: readonly MixtureComponent[],
  d: number,
): Required<MixtureComponent>[] {
  if (!Array.isArray(components) || components.length === 0) {
    throw new InvalidArgumentError(
      "mixture needs at least one component, got an empty components list",
    );
  }
  return components.map((c, k) => {
    if (!c.mean || c.mean.length !== d) {
      throw new InvalidArgumentError(
        `component ${k}: mean has ${c.mean?.length ?? 0} values, expected ${d} (c·h·w)`,
      );
    }
    for (let j = 0; j < d; j++) {
      if (!Number.isFinite(c.mean[j])) {
        throw new InvalidArgumentError(
          `component ${k}: mean[${j}] is ${c.mean[j]}, expected finite`,
        );
      }
    }
    if (!Number.isFinite(c.variance) || c.variance <= 0) {
      throw new InvalidArgumentError(
        `component ${k}: variance must be a finite number > 0, got ${c.variance}`,
      );
    }
    const weight = c.weight ?? 1;
    if (!Number.isFinite(weight) || weight <= 0) {
      throw new InvalidArgumentError(`component ${k}: weight must be > 0, got ${weight}`);
    }
    const words = ((c.words ?? []) as readonly string[]).map((w) => w.toLowerCase());
    return { words: Object.freeze(words), mean: c.mean, variance: c.variance, weight };
  });
}
