/**
 * The object users hold: any backend's {@link Denoiser} plus the verbs `info`, `generate` and
 * `invert`, made by one function ({@link createModel}) for every backend. Backends implement only
 * the denoiser; they never re-implement the verbs.
 *
 * @module
 */
import { type Denoiser, type ImageInput, withMembers } from "../models/denoiser.ts";
import { generate, type GenerateOptions, invert, type InvertOptions } from "../generation/ddim.ts";
import { createQuery, type Query } from "./query.ts";

/** The verbs every {@link Model} has, whatever its backend. */
export interface ModelVerbs<D extends Denoiser> {
  /** the backend this model wraps (what estimators and studies take) */
  readonly denoiser: D;
  /** Starts a lazy information query about an image: `model.info(x).given(prompt).total()`. */
  info(image: ImageInput): Query;
  /** DDIM (η = 0) sample in data space from a prompt (`generate` in src/generation/ddim.ts). */
  generate(prompt: string, options?: GenerateOptions): Promise<Float32Array>;
  /** Deterministic DDIM inversion of an image to x_T (`invert` in src/generation/ddim.ts). */
  invert(image: ImageInput, prompt: string, options?: InvertOptions): Promise<Float32Array>;
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
    generate: (prompt: string, options?: GenerateOptions) => generate(denoiser, prompt, options),
    invert: (image: ImageInput, prompt: string, options?: InvertOptions) =>
      invert(denoiser, image, prompt, options),
  });
  const model = withMembers(denoiser, verbs, "model") as unknown as Model<D>;
  models.add(model);
  return model;
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
