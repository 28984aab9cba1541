/**
 * The fluent query: `model.info(image).given(prompt).samples(200).perToken()`. A thin, immutable
 * wrapper (setters return a new query and do no work) over the plain estimator functions; only the
 * terminal methods run the model.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import type { Denoiser, ImageInput } from "../models/denoiser.ts";
import type { LogSnrSampling } from "../numerics/log-snr.ts";
import { checkLogSnrSampling } from "../numerics/log-snr.ts";
import { conditionalInformation } from "../estimators/conditional-information.ts";
import type { Estimate } from "../estimators/estimate.ts";
import { negativeLogLikelihood } from "../estimators/log-likelihood.ts";
import { mutualInformation } from "../estimators/mutual-information.ts";
import type { EstimatorName, EstimatorOptions, Progress } from "../estimators/options.ts";
import { checkEstimator, checkPositiveInteger } from "../estimators/options.ts";
import { perTokenInformation } from "../estimators/per-token.ts";
import type { LogLikelihood, PerPixelResult, PerTokenResult } from "../estimators/results.ts";
import type { RemoveWordOptions } from "../text/prompt.ts";
import { partialInformation } from "../estimators/pid.ts";
import type { PidOptions, PidResult } from "../estimators/pid.ts";

/** The image of a query, prepared (e.g. VAE-encoded) at most once for every query derived from it. */
interface LazyImage {
  readonly input: ImageInput;
  prepared?: Promise<Float32Array>;
}

/** Everything a query describes; nothing is computed until a terminal method runs. */
export interface QueryDescription {
  /** the model's name */
  readonly model: string;
  /** the prompt, if given */
  readonly prompt?: string;
  /** estimator options set so far */
  readonly options: Omit<EstimatorOptions, "onProgress">;
}

/**
 * An immutable description of an information query about one image.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "./oracles.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red", "circle"], mean: [1, 0], variance: 0.2 }, { words: ["blue", "circle"], mean: [0, 1], variance: 0.2 }] });
 * const query = model.info(model.sample("red circle", { seed: 1 })).given("a red circle").samples(50).seed(3);
 * const result = await query.perToken();
 * console.assert(result.token("red").estimate.nats > 0);
 * ```
 */
export class Query {
  readonly #model: Denoiser;
  readonly #image: LazyImage;
  readonly #prompt?: string;
  readonly #options: EstimatorOptions;

  /** Use `model.info(image)` (or {@link createQuery}) rather than this constructor. */
  constructor(model: Denoiser, image: LazyImage, prompt?: string, options: EstimatorOptions = {}) {
    this.#model = model;
    this.#image = image;
    this.#prompt = prompt;
    this.#options = Object.freeze({ ...options });
  }

  #with(change: { prompt?: string; options?: Partial<EstimatorOptions> }): Query {
    return new Query(this.#model, this.#image, change.prompt ?? this.#prompt, {
      ...this.#options,
      ...change.options,
    });
  }

  /** Sets the prompt the information is about. */
  given(prompt: string): Query {
    if (typeof prompt !== "string") {
      throw new InvalidArgumentError(`given() expects a prompt string, got ${typeof prompt}`);
    }
    return this.#with({ prompt });
  }

  /** Number of (α, ε) draws (default 100). */
  samples(n: number): Query {
    return this.#with({ options: { samples: checkPositiveInteger("samples", n) } });
  }

  /** Seed of the draws (default 0). */
  seed(seed: number): Query {
    if (!Number.isFinite(seed)) throw new InvalidArgumentError(`seed must be finite, got ${seed}`);
    return this.#with({ options: { seed } });
  }

  /** "orthogonal" (default) or "standard". */
  estimator(name: EstimatorName): Query {
    return this.#with({ options: { estimator: checkEstimator(name) } });
  }

  /** Log-SNR sampling: any of loc, scale, clip (the rest from the model's trained range). */
  logSnr(sampling: Partial<LogSnrSampling>): Query {
    const merged = { ...this.#options.logSnr, ...sampling };
    checkLogSnrSampling({ loc: 0, scale: 1, clip: 3, ...merged });
    return this.#with({ options: { logSnr: merged } });
  }

  /** Items per model call (default: the model's). */
  batchSize(n: number): Query {
    return this.#with({ options: { batchSize: checkPositiveInteger("batchSize", n) } });
  }

  /** Called with `{ done, total }` draws as the terminal method runs. */
  onProgress(callback: (progress: Progress) => void): Query {
    return this.#with({ options: { onProgress: callback } });
  }

  /** i(x; prompt) against the null prompt: `{ nats, se, samples }`. */
  async total(): Promise<Estimate> {
    return (await this.perPixel()).estimate;
  }

  /** i(x; word | prompt without the word): `{ nats, se, samples }`. */
  async about(word: string, removal: RemoveWordOptions = {}): Promise<Estimate> {
    const data = await this.#data();
    const result = await conditionalInformation(
      this.#model,
      data,
      this.#requirePrompt("about"),
      word,
      {
        ...this.#options,
        ...removal,
      },
    );
    return result.estimate;
  }

  /** i(x; prompt) with its per-pixel map. */
  async perPixel(): Promise<PerPixelResult> {
    const prompt = this.#requirePrompt("perPixel");
    return mutualInformation(this.#model, await this.#data(), prompt, this.#options);
  }

  /** Every word's conditional information and map, and the total, from one pass. */
  async perToken(options: { placeholder?: string } = {}): Promise<PerTokenResult> {
    const prompt = this.#requirePrompt("perToken");
    return perTokenInformation(this.#model, await this.#data(), prompt, {
      ...this.#options,
      ...options,
    });
  }

  /** −log p(x | prompt) (the null prompt if none was given). */
  async nll(): Promise<LogLikelihood> {
    return negativeLogLikelihood(
      this.#model,
      await this.#data(),
      this.#prompt ?? "",
      this.#options,
    );
  }

  /**
   * Partial information decomposition of two words of the prompt: redundancy, unique and synergy,
   * plain and conditional, each with its standard error and map.
   */
  async pid(
    wordA: string,
    wordB: string,
    options: Pick<PidOptions, "redundancy" | "resamples"> = {},
  ): Promise<PidResult> {
    const prompt = this.#requirePrompt("pid");
    return partialInformation(this.#model, await this.#data(), prompt, wordA, wordB, {
      ...this.#options,
      ...options,
    });
  }

  /** The model, for functions that extend the query. */
  get model(): Denoiser {
    return this.#model;
  }

  /** The prompt, if given. */
  get prompt(): string | undefined {
    return this.#prompt;
  }

  /** The estimator options set so far. */
  get options(): EstimatorOptions {
    return this.#options;
  }

  /** The prepared model data of the image (computed once per image, shared by derived queries). */
  data(): Promise<Float32Array> {
    return this.#data();
  }

  /** What the query describes. */
  describe(): QueryDescription {
    const { onProgress: _, ...options } = this.#options;
    return { model: this.#model.name, prompt: this.#prompt, options };
  }

  /** Same as {@link Query.describe}. */
  toJSON(): QueryDescription {
    return this.describe();
  }

  #data(): Promise<Float32Array> {
    this.#image.prepared ??= this.#model.prepare(this.#image.input);
    return this.#image.prepared;
  }

  #requirePrompt(method: string): string {
    if (this.#prompt === undefined) {
      throw new InvalidArgumentError(
        `${method}() needs a prompt: call .given(prompt) first, e.g. model.info(image).given("a red circle").${method}()`,
      );
    }
    return this.#prompt;
  }
}

/**
 * Starts a query about an image. Backends implement `Denoiser.info` with it.
 *
 * @example
 * ```ts
 * import { createQuery } from "./query.ts";
 * import { mixtureModel } from "./oracles.ts";
 * const model = mixtureModel({ shape: [1, 1, 1], components: [{ words: [], mean: [0], variance: 1 }] });
 * const q = createQuery(model, new Float32Array([0]));
 * console.assert(q.describe().prompt === undefined);
 * ```
 */
export function createQuery(model: Denoiser, image: ImageInput): Query {
  return new Query(model, { input: image });
}
