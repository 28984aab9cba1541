/**
 * The object users hold: any backend's {@link Denoiser} plus the verbs `info`, `generate` and
 * `invert`, made by one function ({@link createModel}) for every backend. Backends implement only
 * the denoiser; they never re-implement the verbs.
 *
 * @module
 */
import { type Denoiser, type ImageInput, withMembers } from "../models/denoiser.ts";
import { generate, type GenerateOptions, invert, type InvertOptions } from "../generation/ddim.ts";
import { flowGenerate, flowInvert, type FlowSolver } from "../generation/flow-ode.ts";
import { InvalidArgumentError } from "../errors.ts";
import { createQuery, type Query } from "./query.ts";

/** The verbs every {@link Model} has, whatever its backend. */
export interface ModelVerbs<D extends Denoiser> {
  /** the backend this model wraps (what estimators and studies take) */
  readonly denoiser: D;
  /** Starts a lazy information query about an image: `model.info(x).given(prompt).total()`. */
  info(image: ImageInput): Query;
  /**
   * A sample in data space from a prompt: DDIM (η = 0, `generate` in src/generation/ddim.ts), or
   * on a flow model (`flow`) its flow ODE as its pipeline steps it (`flowGenerate` in
   * src/generation/flow-ode.ts; `solver` "euler" or "heun", 28 steps by default).
   */
  generate(prompt: string, options?: ModelGenerateOptions): Promise<Float32Array>;
  /**
   * Deterministic inversion of an image to its starting noise: DDIM's x_T, or on a flow model the
   * VP state at the top of its trained range (`flowInvert`).
   */
  invert(image: ImageInput, prompt: string, options?: ModelInvertOptions): Promise<Float32Array>;
}

/** Options of `model.generate`: DDIM's, and the solver of a flow model's ODE. */
export interface ModelGenerateOptions extends GenerateOptions {
  /** flow models only: "euler" (default, the pipelines') or "heun" */
  readonly solver?: FlowSolver;
}

/** Options of `model.invert`: DDIM's, and the solver of a flow model's ODE. */
export interface ModelInvertOptions extends InvertOptions {
  /** flow models only: "euler" (default) or "heun"; regenerate with the same */
  readonly solver?: FlowSolver;
}

/**
 * A denoiser with the user verbs. Every member of the backend (`encode`, `tokenizer`, `sample`, …)
 * is there as on the backend itself, bound to it.
 */
export type Model<D extends Denoiser = Denoiser> = D & ModelVerbs<D>;

const models = new WeakSet<object>();

/**
 * Wraps a denoiser as a {@link Model}. The wrapper is immutable and delegates every backend member
 * to the denoiser itself (methods bound to it, so backends with private fields work and a copy of
 * the model never calls the wrong backend); the verbs are closures over the denoiser. Wrapping a
 * model again returns it unchanged.
 *
 * @example
 * ```ts
 * import { createModel } from "./model.ts";
 * import { mixtureDenoiser } from "../models/mixture.ts";
 * const denoiser = mixtureDenoiser({ shape: [1, 1, 1], components: [{ words: ["a"], mean: [1], variance: 0.1 }] });
 * const model = createModel(denoiser);
 * console.assert(model.denoiser === denoiser && model.shape === denoiser.shape);
 * const nats = (await model.info(new Float32Array([1])).given("a").samples(8).total()).nats;
 * console.assert(Number.isFinite(nats));
 * ```
 */
export function createModel<D extends Denoiser>(denoiser: D): Model<D> {
  if (models.has(denoiser)) return denoiser as Model<D>;
  const verbs: ModelVerbs<D> = Object.freeze({
    denoiser,
    info: (image: ImageInput) => createQuery(denoiser, image),
    generate: (prompt: string, options?: ModelGenerateOptions) =>
      denoiser.flow
        ? flowGenerate(denoiser, prompt, options)
        : generate(denoiser, prompt, withoutSolver(denoiser, options)),
    invert: (image: ImageInput, prompt: string, options?: ModelInvertOptions) =>
      denoiser.flow
        ? flowInvert(denoiser, image, prompt, options)
        : invert(denoiser, image, prompt, withoutSolver(denoiser, options)),
  });
  const model = withMembers(denoiser, verbs, "model") as unknown as Model<D>;
  models.add(model);
  return model;
}

/** DDIM's options, refusing a flow solver (DDIM has none; it would be silently dropped). */
function withoutSolver<O extends { readonly solver?: FlowSolver }>(
  denoiser: Denoiser,
  options: O | undefined,
): Omit<O, "solver"> | undefined {
  if (options?.solver === undefined) return options;
  throw new InvalidArgumentError(
    `solver "${options.solver}" steps a flow model's ODE, and ${denoiser.name} is not a flow ` +
      `model (it runs DDIM); expected no solver`,
  );
}

/**
 * True for objects made by {@link createModel}.
 *
 * @example
 * ```ts
 * import { createModel, isModel } from "./model.ts";
 * import { exampleDenoiser } from "../models/example.ts";
 * const denoiser = exampleDenoiser();
 * console.assert(!isModel(denoiser) && isModel(createModel(denoiser)));
 * ```
 */
export function isModel(value: unknown): value is Model {
  return typeof value === "object" && value !== null && models.has(value);
}
