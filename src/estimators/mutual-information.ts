/**
 * Pointwise mutual information i(x; prompt) against the null prompt, with its per-pixel map.
 *
 * @module
 */
import type { Denoiser } from "../models/denoiser.ts";
import { type ContrastPlan, contrastPlan, estimateContrasts } from "./contrasts.ts";
import type { EstimatorOptions } from "./options.ts";
import { resolveOptions } from "./options.ts";
import { PerPixelResult } from "./results.ts";

/**
 * The contrast plan of {@link mutualInformation}: the prompt against the null prompt.
 *
 * @example
 * ```ts
 * import { mutualInformationPlan } from "./mutual-information.ts";
 * console.assert(mutualInformationPlan("a red circle").prompts[1] === "");
 * ```
 */
export function mutualInformationPlan(prompt: string): ContrastPlan {
  return contrastPlan([[prompt, ""]]);
}

/**
 * i(x; y) = ½∫ E_ε[…] dα between a datum and a prompt (REFERENCE §2), in the orthogonal form
 * (default, ≥ 0) or the standard form (unbiased for log p(x|y) − log p(x)).
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../query/oracles.ts";
 * import { mutualInformation } from "./mutual-information.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red"], mean: [1, 0], variance: 0.2 }, { words: ["blue"], mean: [0, 1], variance: 0.2 }] });
 * const result = await mutualInformation(model, model.sample("red", { seed: 2 }), "red", { samples: 50 });
 * console.assert(result.estimate.nats > 0 && Math.abs(result.map.sum() - result.estimate.nats) < 1e-6);
 * ```
 */
export async function mutualInformation(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  options: EstimatorOptions = {},
): Promise<PerPixelResult> {
  const outcome = await estimateContrasts(
    model,
    data,
    mutualInformationPlan(prompt),
    resolveOptions(model, options),
  );
  const [result] = outcome.contrasts;
  return new PerPixelResult(result.estimate, result.map);
}
