/**
 * How the samplers (DDIM, Karras–Heun) ask a model for ε̂: one noise level for a batch of states,
 * optionally with classifier-free guidance.
 *
 * @module
 */
import { InvalidArgumentError, ModelRuntimeError } from "../errors.ts";
import type { Condition, Denoiser } from "../models/denoiser.ts";
import { shapeSize } from "../models/denoiser.ts";

/**
 * ε̂ of every state at one α (classifier-free guided when a null condition is given:
 * `ε̂("") + g·(ε̂(prompt) − ε̂(""))`), in calls of the model's batch size. The samplers' one way
 * of asking the model.
 *
 * @example
 * ```ts
 * import { guidedNoise } from "./guided-noise.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const model = exampleOracle();
 * const condition = await model.encode("a red circle on the left");
 * const [eps] = await guidedNoise(model, [new Float32Array(3 * 16 * 16)], 0, [condition], undefined, 1);
 * console.assert(eps.length === 3 * 16 * 16);
 * ```
 */
export async function guidedNoise(
  model: Denoiser,
  states: readonly Float32Array[],
  alpha: number,
  conditions: readonly Condition[],
  nullCondition: Condition | undefined,
  guidance: number,
): Promise<Float32Array[]> {
  const d = shapeSize(model.shape);
  const perItem = nullCondition ? 2 : 1;
  const total = states.length * perItem;
  const flat = new Float32Array(total * d);
  for (let first = 0; first < total; first += model.batchSize) {
    const size = Math.min(model.batchSize, total - first);
    const noisy = new Float32Array(size * d);
    const batchConditions: Condition[] = [];
    for (let j = 0; j < size; j++) {
      const index = first + j, item = Math.floor(index / perItem);
      noisy.set(states[item], j * d);
      batchConditions.push(index % perItem === 0 ? conditions[item] : nullCondition!);
    }
    const out = await model.predictNoise({
      noisy,
      logSnr: new Float64Array(size).fill(alpha),
      conditions: batchConditions,
    });
    if (out.length !== size * d) {
      throw new ModelRuntimeError(
        `${model.name}: predictNoise returned ${out.length} values for ${size} items, expected ${
          size * d
        }`,
      );
    }
    flat.set(out, first * d);
  }
  return states.map((_, item) => {
    const conditional = flat.subarray(item * perItem * d, (item * perItem + 1) * d);
    if (!nullCondition) return conditional;
    const unconditional = flat.subarray((item * perItem + 1) * d, (item * perItem + 2) * d);
    const guided = new Float32Array(d);
    for (let j = 0; j < d; j++) {
      guided[j] = unconditional[j] + guidance * (conditional[j] - unconditional[j]);
    }
    return guided;
  });
}

/**
 * The model's condition of a prompt, refusing anything but a string.
 *
 * @example
 * ```ts
 * import { encodePrompt } from "./guided-noise.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * await encodePrompt(exampleOracle(), "a red circle");
 * ```
 */
export async function encodePrompt(model: Denoiser, prompt: string): Promise<Condition> {
  if (typeof prompt !== "string") {
    throw new InvalidArgumentError(`prompt must be a string, got ${typeof prompt}`);
  }
  return await model.encode(prompt);
}

/**
 * The conditions of a batch of trajectories: each prompt's, and the null prompt's when the
 * guidance scale asks for classifier-free guidance (g ≠ 1), with g checked.
 *
 * @throws {InvalidArgumentError} for a guidance scale that is not a finite number
 *
 * @example
 * ```ts
 * import { guidedConditions } from "./guided-noise.ts";
 * import { exampleOracle } from "../query/oracles.ts";
 * const plain = await guidedConditions(exampleOracle(), ["a red circle"], undefined);
 * console.assert(plain.guidance === 1 && plain.nullCondition === undefined);
 * ```
 */
export async function guidedConditions(
  model: Denoiser,
  prompts: readonly string[],
  guidance: number | undefined,
): Promise<{ conditions: Condition[]; nullCondition?: Condition; guidance: number }> {
  const g = guidance ?? 1;
  if (!Number.isFinite(g)) {
    throw new InvalidArgumentError(`guidance must be a finite number, got ${guidance}`);
  }
  const conditions = await Promise.all(prompts.map((p) => encodePrompt(model, p)));
  const nullCondition = g === 1 ? undefined : await encodePrompt(model, "");
  return { conditions, ...(nullCondition ? { nullCondition } : {}), guidance: g };
}

/**
 * A copy of `x` times `factor`: the samplers' change of scale between a VP state and their own.
 *
 * @example
 * ```ts
 * import { scaledCopy } from "./guided-noise.ts";
 * const x = Float32Array.of(1, 2);
 * console.assert(scaledCopy(x, 2)[1] === 4 && x[1] === 2);
 * ```
 */
export function scaledCopy(x: Float32Array, factor: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let j = 0; j < x.length; j++) out[j] = x[j] * factor;
  return out;
}
