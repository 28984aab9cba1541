/**
 * The exact oracles as {@link Model}s: each is its backend's denoiser wrapped by
 * {@link createModel}. Pure JavaScript; importing them loads no native code.
 *
 * @module
 */
import { type MixtureDenoiser, mixtureDenoiser, type MixtureSpec } from "../models/mixture.ts";
import { exampleDenoiser } from "../models/example.ts";
import {
  type ShapesDenoiser,
  shapesDenoiser,
  type ShapesOracleOptions,
} from "../models/shapes-oracle.ts";
import type { ShapesWorld } from "../datasets/shapes/world.ts";
import { createModel, type Model } from "./model.ts";

/** The exact Gaussian-mixture oracle as a model (exact log-densities, sampling, conditions). */
export type MixtureModel = Model<MixtureDenoiser>;

/** The shapes world's exact oracle as a model. */
export type ShapesOracle = Model<ShapesDenoiser>;

/**
 * Builds the exact mixture oracle: a prompt conditions on the known words it contains, and
 * p(x | prompt) is the mixture restricted to the components that carry all of them.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "./oracles.ts";
 * const model = mixtureModel({ shape: [1, 2, 2], components: [
 *   { words: ["red"], mean: [1, 1, 0, 0], variance: 0.1 },
 *   { words: ["blue"], mean: [0, 0, 1, 1], variance: 0.1 },
 * ] });
 * const x = model.sample("red", { seed: 1 });
 * const info = await model.info(x).given("red").samples(20).total();
 * console.assert(info.nats > 0 && model.logDensity(x, "red") > model.logDensity(x, "blue"));
 * ```
 */
export function mixtureModel(spec: MixtureSpec): MixtureModel {
  return createModel(mixtureDenoiser(spec));
}

/**
 * The example oracle: 3 colours × 3 shapes × 4 places, each a narrow Gaussian around the rendered
 * picture carrying its three words (see `exampleDenoiser`).
 *
 * @example
 * ```ts
 * import { exampleOracle } from "./oracles.ts";
 * import { EXAMPLE_PROMPT } from "../models/example.ts";
 * const model = exampleOracle();
 * const result = await model.info(model.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT).samples(10).perToken();
 * console.assert(result.tokens.length === 6);
 * ```
 */
export function exampleOracle(size = 16, variance = 0.05): MixtureModel {
  return createModel(exampleDenoiser(size, variance));
}

/**
 * The exact oracle of a shapes world: one narrow Gaussian per scene, carrying its caption's words
 * and binding tokens (see `shapesDenoiser`).
 *
 * @example
 * ```ts
 * import { shapesOracle } from "./oracles.ts";
 * import { shapesWorld } from "../datasets/shapes/world.ts";
 * const oracle = shapesOracle(shapesWorld({ seed: 1, count: 20 }));
 * const scene = oracle.world.scenes[0];
 * console.assert(oracle.logDensity(scene.toData(), scene.caption) > oracle.logDensity(scene.toData(), ""));
 * ```
 */
export function shapesOracle(world: ShapesWorld, options: ShapesOracleOptions = {}): ShapesOracle {
  return createModel(shapesDenoiser(world, options));
}
