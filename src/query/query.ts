/**
 * The fluent query: `model.info(image).given(prompt).samples(200).perToken()`. A thin, immutable
 * wrapper (setters return a new query and do no work) over the plain estimator functions; only the
 * terminal methods run the model.
 *
 * @module
 */
import { InvalidArgumentError } from "../errors.ts";
import { type Denoiser, type ImageInput, modelIdentity } from "../models/denoiser.ts";
import { type ImageIdentity, imageIdentity } from "../images/image-identity.ts";
import { type Provenance, withProvenance } from "../estimators/provenance.ts";
import { VERSION } from "../version.ts";
import type { LogSnrSampling } from "../numerics/log-snr.ts";
import { checkLogSnrSampling } from "../numerics/log-snr.ts";
import { checkSeed } from "../numerics/random.ts";
import { conditionalInformation, conditionalPlan } from "../estimators/conditional-information.ts";
import {
  adaptiveRounds,
  callSchedule,
  type ContrastPlan,
  pilotShare,
} from "../estimators/contrasts.ts";
import { drawsPerLogSnr } from "../estimators/draws.ts";
import type { Estimate } from "../estimators/estimate.ts";
import { likelihoodPlan, negativeLogLikelihood } from "../estimators/log-likelihood.ts";
import { mutualInformation, mutualInformationPlan } from "../estimators/mutual-information.ts";
import type {
  EstimatorName,
  EstimatorOptions,
  PrecisionScope,
  Progress,
} from "../estimators/options.ts";
import type { DrawDesign } from "../estimators/draws.ts";
import { contrastProfileNames } from "../estimators/contrast-profile.ts";
import {
  checkDesign,
  checkEstimator,
  checkPositiveInteger,
  checkSamples,
  type ProposalChoice,
  type ResolvedOptions,
  resolveOptions,
  scheduleSettings,
} from "../estimators/options.ts";
import { perTokenInformation, perTokenPlan } from "../estimators/per-token.ts";
import type { LogLikelihood, PerPixelResult, PerTokenResult } from "../estimators/results.ts";
import type { RemoveWordOptions } from "../text/prompt.ts";
import { partialInformation, pidEstimatorOptions, pidPlan } from "../estimators/pid.ts";
import {
  checkTruncation,
  planTruncation,
  type PromptTruncation,
  unseenWords,
} from "../estimators/truncation.ts";
import type { PidOptions, PidResult } from "../estimators/pid.ts";

/** The image of a query, prepared (e.g. VAE-encoded) and identified at most once for every query derived from it. */
interface LazyImage {
  readonly input: ImageInput;
  prepared?: Promise<Float32Array>;
  identity?: Promise<ImageIdentity>;
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

/** The terminal methods of a {@link Query}, in one frozen table. */
export const QUERY_TERMINALS: readonly ["total", "perPixel", "perToken", "nll", "about", "pid"] =
  Object.freeze(["total", "perPixel", "perToken", "nll", "about", "pid"] as const);

/** One of {@link QUERY_TERMINALS}. */
export type QueryTerminal = typeof QUERY_TERMINALS[number];

/** What a terminal would evaluate, before anything runs ({@link Query.plan}). */
export interface QueryPlan {
  /** the terminal method */
  readonly terminal: QueryTerminal;
  /** the model's name */
  readonly model: string;
  /** the distinct prompts evaluated on every (α, ε) draw, in evaluation order */
  readonly prompts: readonly string[];
  /** the informations estimated: richer prompt against poorer prompt */
  readonly contrasts: readonly { readonly with: string; readonly without: string }[];
  /** prompts whose denoising error is integrated (the likelihood) */
  readonly denoisingErrors: readonly string[];
  /** (α, ε) draws */
  readonly samples: number;
  /** items per model call */
  readonly batchSize: number;
  /** model calls the terminal will make */
  readonly modelCalls: number;
  /** items (noisy datum × prompt) the model will denoise */
  readonly modelItems: number;
  /**
   * where α is drawn from: the logistic, a flow model's training law (a Gaussian in α), or a
   * fitted proposal with its logistic share and, per contrast, the calibrated profiles it draws
   * from ("whole prompt", a word, or "model")
   */
  readonly proposal:
    | "logistic"
    | { readonly kind: "schedule"; readonly lambda: number; readonly timesteps: number }
    | {
      readonly kind: "training-law";
      readonly lambda: number;
      readonly mean: number;
      readonly std: number;
    }
    | { readonly kind: "fitted"; readonly lambda: number; readonly profiles: string[][] };
  /**
   * present when α adapts to the terminal's own draws (a model without a calibrated profile): the
   * first round's draws come from `proposal`, later ones from a profile fitted on the rounds
   * before them — `samples` split into the pilot and the rest, or a precision target's rounds;
   * `rounds` a split budget's rounds in order (a pilot from a prior of 48 draws or more and at
   * least 40 % of them, at 94–125 draws, is itself split, its second part drawn from a refit on
   * its first: `ADAPT_SPLIT_MIN_SHARE`);
   * `pilotWeight` is the pilot's fixed share of a split budget's estimate (the rest the adapted
   * round's; a split pilot's parts share it by their draws), absent where rounds weigh by their
   * draws; `refitShare` the logistic's share of each refitted round's proposal (`SELF_FIT_SHARE`
   * after a pilot from a prior, `PROFILE_REFIT_SHARE` after one from a fitted profile)
   */
  readonly adapt?: {
    readonly pilot: number;
    readonly rest: number | "precision rounds";
    readonly rounds?: readonly number[];
    readonly pilotWeight?: number;
    readonly refitShare: number;
  };
  /** the prompts a text encoder's context cuts, per encoder (empty: every prompt fits) */
  readonly truncation: readonly PromptTruncation[];
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
    return this.#with({ options: { samples: checkSamples(n) } });
  }

  /** Seed of the draws (default 0): any safe integer; every seed gives its own draws. */
  seed(seed: number): Query {
    return this.#with({ options: { seed: checkSeed(seed) } });
  }

  /** "orthogonal" (default) or "standard". */
  estimator(name: EstimatorName): Query {
    return this.#with({ options: { estimator: checkEstimator(name) } });
  }

  /**
   * Log-SNR sampling: any of loc, scale, clip (the rest from the model's trained range). Checked
   * at once against the model: an interval outside its trained range is refused unless
   * `{ allowOutsideTrainedRange: true }` is passed as the second argument.
   */
  logSnr(
    sampling: Partial<LogSnrSampling>,
    options: { readonly allowOutsideTrainedRange?: boolean } = {},
  ): Query {
    const merged = { ...this.#options.logSnr, ...sampling };
    checkLogSnrSampling({ loc: 0, scale: 1, clip: 3, ...merged });
    const next = this.#with({
      options: {
        logSnr: merged,
        ...(options.allowOutsideTrainedRange ? { allowOutsideTrainedRange: true } : {}),
      },
    });
    resolveOptions(this.#model, next.#options);
    return next;
  }

  /**
   * The layout of the draws (default "stratified-antithetic"; "iid" is the earlier scheme): the
   * same estimand, a different variance per model call (docs/performance.md, "Variance per model call").
   */
  design(name: DrawDesign): Query {
    return this.#with({ options: { design: checkDesign(name) } });
  }

  /**
   * Where α is drawn from: "logistic", "fitted" (the model's calibrated profile, the default when
   * it has one), "schedule" (uniform over a discrete-time model's trained timesteps, its default
   * otherwise), "training-law" (a flow model's training law of t, on request: the logistic over
   * the trained range is a flow model's default, measured better) or a profile (`infodiff
   * calibrate`). The same estimand either way. Naming one fixes every draw's
   * law: the estimate does not adapt unless `adapt(true)` asks it to (see {@link Query.adapt}).
   */
  proposal(choice: ProposalChoice): Query {
    const next = this.#with({ options: { proposal: choice } });
    resolveOptions(this.#model, next.#options); // a profile of another model is refused at once
    return next;
  }

  /**
   * Whether α adapts to the terminal's own draws on a model without a calibrated profile (default
   * true; false on a flow model, where it was measured to raise the variance): a pilot round from
   * the model's prior, then rounds from a profile fitted on the rounds so far, combined without
   * bias (`plan().adapt` shows the rounds). `false` draws every α from the prior; `true` adapts
   * on a flow model, or from a named proposal or the model's calibrated profile, too.
   */
  adapt(on: boolean): Query {
    const next = this.#with({ options: { adapt: on } });
    resolveOptions(this.#model, next.#options); // a non-boolean is refused at once
    return next;
  }

  /**
   * Adaptive precision: keep drawing in rounds until every number's standard error is at most
   * `se` nats or `maxSamples` draws are spent (default 20 × samples); `samples` of each result
   * says how many draws it used, and a target not reached is warned about. Under a stratified
   * design the target is met by the larger of the design's SE and its units' plain SE, as the
   * interval is built: heavy-tailed draws can make the collapsed strata's SE too small alone.
   * `of: "words"` sets the target for a `perToken` query's words alone: the whole prompt's
   * i(x; prompt), which it also reports, has an SE several times a word's and would otherwise
   * run the query to `maxSamples`.
   *
   * @example
   * ```ts
   * import { exampleOracle, EXAMPLE_PROMPT } from "../../mod.ts";
   * const model = exampleOracle();
   * const words = await model.info(model.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT)
   *   .samples(40).precision(0.5, { of: "words" }).perToken();
   * console.assert(words.tokens.every((t) => t.estimate.se <= 0.5));
   * ```
   */
  precision(
    se: number,
    options: { readonly maxSamples?: number; readonly of?: PrecisionScope } = {},
  ): Query {
    const precision = { se, ...options };
    const next = this.#with({ options: { precision } });
    resolveOptions(this.#model, next.#options); // checked at once, against the samples set so far
    return next;
  }

  /**
   * Estimate contrasts whose two prompts a text encoder's context cuts differently (refused by
   * default: the full prompt is cut but the prompt without the word fits, so the word's number
   * would also hold the cut-off words). Recorded in the results' provenance settings.
   */
  allowTruncation(allow = true): Query {
    if (typeof allow !== "boolean") {
      throw new InvalidArgumentError(
        `allowTruncation() expects true or false, got ${typeof allow}`,
      );
    }
    return this.#with({ options: { allowTruncation: allow } });
  }

  /** Items per model call (default: the model's). */
  batchSize(n: number): Query {
    return this.#with({ options: { batchSize: checkPositiveInteger("batchSize", n) } });
  }

  /** Called with `{ done, total }` draws as the terminal method runs. */
  onProgress(callback: (progress: Progress) => void): Query {
    if (typeof callback !== "function") {
      throw new InvalidArgumentError(
        `onProgress() expects a function ({ done, total }) => void, got ${typeof callback}`,
      );
    }
    return this.#with({ options: { onProgress: callback } });
  }

  /**
   * The dry run of a terminal: its distinct prompts, contrasts and model calls and items, and the
   * prompts the model's context cuts, from the same plan the terminal runs (refused as the
   * terminal would be). Nothing is evaluated and the image is not prepared.
   *
   * @example
   * ```ts
   * import { exampleOracle } from "./oracles.ts";
   * import { EXAMPLE_PROMPT } from "../models/example.ts";
   * const model = exampleOracle();
   * const plan = model.info(new Float32Array(3 * 16 * 16)).given(EXAMPLE_PROMPT).samples(10).plan("perToken");
   * // the prompt, the null prompt and the prompt without each of its 6 words: 8 conditions
   * console.assert(plan.prompts.length === 8 && plan.modelItems === 80);
   * ```
   */
  plan(terminal: "total" | "perPixel" | "perToken" | "nll"): QueryPlan;
  /** The dry run of `about(word, removal)`. */
  plan(terminal: "about", word: string, removal?: RemoveWordOptions): QueryPlan;
  /** The dry run of `pid(wordA, wordB, options)`. */
  plan(
    terminal: "pid",
    wordA: string,
    wordB: string,
    options?: Pick<PidOptions, "redundancy">,
  ): QueryPlan;
  plan(terminal: QueryTerminal, ...args: unknown[]): QueryPlan {
    const contrastPlan = this.#contrastPlan(terminal, args);
    const resolved = resolveOptions(this.#model, this.#options);
    const { truncation } = checkTruncation(
      this.#model,
      contrastPlan,
      resolved.allowTruncation ?? false,
    );
    const conditions = contrastPlan.prompts.length;
    const schedule = callSchedule(
      resolved.samples,
      conditions,
      resolved.batchSize,
      drawsPerLogSnr(this.#model, resolved, conditions),
      this.#model.sharedLogSnr ?? false,
    );
    const prompt = (index: number) => contrastPlan.prompts[index];
    return {
      terminal,
      model: this.#model.name,
      prompts: contrastPlan.prompts,
      contrasts: contrastPlan.contrasts.map((c) => ({
        with: prompt(c.with),
        without: prompt(c.without),
      })),
      denoisingErrors: (contrastPlan.denoisingErrors ?? []).map(prompt),
      samples: resolved.samples,
      batchSize: resolved.batchSize,
      modelCalls: schedule.calls,
      modelItems: schedule.items,
      proposal: resolved.proposal.kind === "logistic"
        ? "logistic"
        : resolved.proposal.kind === "schedule"
        ? scheduleSettings(resolved.proposal)
        : resolved.proposal.kind === "training-law"
        ? {
          kind: "training-law",
          lambda: resolved.proposal.lambda,
          mean: resolved.proposal.mean,
          std: resolved.proposal.std,
        }
        : {
          kind: "fitted",
          lambda: resolved.proposal.lambda,
          profiles: contrastProfileNames(resolved.proposal.profile, contrastPlan),
        },
      ...adaptPlanOf(resolved, this.#model, conditions),
      truncation,
    };
  }

  #contrastPlan(terminal: QueryTerminal, args: readonly unknown[]): ContrastPlan {
    switch (terminal) {
      case "total":
      case "perPixel":
        return mutualInformationPlan(this.#requirePrompt(terminal));
      case "perToken": {
        const prompt = this.#requirePrompt(terminal);
        const placeholder = (args[0] as { placeholder?: string } | undefined)?.placeholder;
        return perTokenPlan(prompt, placeholder, unseenWords(this.#model, prompt)).plan;
      }
      case "nll":
        return likelihoodPlan(this.#prompt ?? "");
      case "about":
        return conditionalPlan(
          this.#requirePrompt(terminal),
          args[0] as string,
          (args[1] ?? {}) as RemoveWordOptions,
        );
      case "pid":
        return pidPlan(
          this.#requirePrompt(terminal),
          args[0] as string,
          args[1] as string,
          (args[2] as Pick<PidOptions, "redundancy"> | undefined)?.redundancy,
        ).plan;
      default:
        throw new InvalidArgumentError(
          `unknown terminal "${terminal}"; expected one of ${QUERY_TERMINALS.join(", ")}`,
        );
    }
  }

  /** i(x; prompt) against the null prompt: `{ nats, se, samples }`. */
  async total(): Promise<Estimate> {
    const prompt = this.#requirePrompt("total");
    const result = await mutualInformation(this.#model, await this.#data(), prompt, this.#options);
    return withProvenance(result.estimate, await this.#provenance({ terminal: "total" }));
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
    return withProvenance(
      result.estimate,
      await this.#provenance({ terminal: "about", word, ...removal }, [word, removal]),
    );
  }

  /** i(x; prompt) with its per-pixel map. */
  async perPixel(): Promise<PerPixelResult> {
    const prompt = this.#requirePrompt("perPixel");
    const result = await mutualInformation(this.#model, await this.#data(), prompt, this.#options);
    return withProvenance(result, await this.#provenance({ terminal: "perPixel" }));
  }

  /** Every word's conditional information and map, and the total, from one pass. */
  async perToken(options: { placeholder?: string } = {}): Promise<PerTokenResult> {
    const prompt = this.#requirePrompt("perToken");
    const result = await perTokenInformation(this.#model, await this.#data(), prompt, {
      ...this.#options,
      ...options,
    });
    return withProvenance(
      result,
      await this.#provenance({ terminal: "perToken", ...options }, [options]),
    );
  }

  /** −log p(x | prompt) (the null prompt if none was given). */
  async nll(): Promise<LogLikelihood> {
    const result = await negativeLogLikelihood(
      this.#model,
      await this.#data(),
      this.#prompt ?? "",
      this.#options,
    );
    return withProvenance(result, await this.#provenance({ terminal: "nll" }));
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
    const result = await partialInformation(this.#model, await this.#data(), prompt, wordA, wordB, {
      ...this.#options,
      ...options,
    });
    // the specific redundancy runs with the standard estimator: say so in the provenance
    const estimator = pidEstimatorOptions({ ...this.#options, ...options }).estimator;
    return withProvenance(
      result,
      await this.#provenance({ terminal: "pid", wordA, wordB, ...options }, [
        wordA,
        wordB,
        options,
      ], estimator),
    );
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

  /**
   * How a terminal's result was made: version, model, image, prompt, query, settings, and the
   * prompts of its plan (the terminal `query.terminal` with `args`) that the context cut.
   */
  async #provenance(
    query: Record<string, unknown> & { readonly terminal: QueryTerminal },
    args: readonly unknown[] = [],
    estimator?: EstimatorName,
  ): Promise<Provenance> {
    this.#image.identity ??= imageIdentity(this.#image.input);
    const { onProgress: _, ...resolved } = resolveOptions(this.#model, {
      ...this.#options,
      ...(estimator ? { estimator } : {}),
    });
    // a schedule proposal by its timesteps, not its thousand bins (the identity holds the schedule)
    const settings = resolved.proposal.kind === "schedule"
      ? { ...resolved, proposal: scheduleSettings(resolved.proposal) }
      : resolved;
    return Object.freeze({
      infodiff: VERSION,
      created: new Date().toISOString(),
      model: await modelIdentity(this.#model),
      image: await this.#image.identity,
      prompt: this.#prompt ?? "",
      query,
      // on scalar-timestep models the model's batch size sets how many draws share an α
      settings: this.#model.sharedLogSnr
        ? { ...settings, modelBatchSize: this.#model.batchSize }
        : settings,
      truncation: planTruncation(this.#model, this.#contrastPlan(query.terminal, args).prompts),
    });
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

/** The adaptive rounds a terminal will run ({@link QueryPlan.adapt}), if any. */
function adaptPlanOf(
  resolved: ResolvedOptions,
  model: Denoiser,
  conditions: number,
): { adapt?: QueryPlan["adapt"] } {
  if (!resolved.adapt) return {};
  if (resolved.precision) {
    const { pilot, refitShare } = resolved.adapt;
    return { adapt: { pilot, rest: "precision rounds", refitShare } };
  }
  const rounds = adaptiveRounds(resolved, drawsPerLogSnr(model, resolved, conditions));
  if (rounds === undefined) return {};
  const rest = rounds[rounds.length - 1];
  const pilot = resolved.samples - rest;
  const discount = resolved.adapt.pilotDiscount;
  return {
    adapt: {
      pilot,
      rest,
      rounds,
      ...(discount === undefined
        ? {}
        : { pilotWeight: pilotShare(pilot, resolved.samples, discount) }),
      refitShare: resolved.adapt.refitShare,
    },
  };
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
