/**
 * Negative log-likelihood from denoising errors (Information-Theoretic Diffusion, REFERENCE §2).
 *
 * @module
 */
import type { Denoiser } from "../models/denoiser.ts";
import { shapeSize } from "../models/denoiser.ts";
import { type ContrastPlan, estimateContrasts } from "./contrasts.ts";
import type { EstimatorOptions } from "./options.ts";
import { resolveOptions } from "./options.ts";
import { logSnrInterval } from "../numerics/log-snr.ts";
import { LogLikelihood } from "./results.ts";

/**
 * The plan of {@link negativeLogLikelihood}: the prompt's denoising error, no contrast.
 *
 * @example
 * ```ts
 * import { likelihoodPlan } from "./log-likelihood.ts";
 * console.assert(likelihoodPlan("").denoisingErrors?.[0] === 0);
 * ```
 */
export function likelihoodPlan(prompt: string): ContrastPlan {
  return { prompts: [prompt], contrasts: [], denoisingErrors: [0] };
}

/**
 * −log p(x | prompt) = (d/2)·log(2πe) + ½∫ [mmse(α) − d·σ(α)] dα, with mmse(α) = E_ε‖ε − ε̂(x_α|prompt)‖²
 * for this x: the continuous density of the model's data (latents for SD), not ITD's discrete
 * bits/dim (see {@link LogLikelihood}). The integral runs over the sampled log-SNR interval (the
 * model's trained range by default; an interval beyond it is refused unless
 * `allowOutsideTrainedRange`, and then warned about, since draws there would be evaluated at the
 * end timesteps); the integrand vanishes at both ends for data that look Gaussian at those noise
 * levels, so the value is a truncation for data that do not.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../query/oracles.ts";
 * import { negativeLogLikelihood } from "./log-likelihood.ts";
 * const model = mixtureModel({ shape: [1, 1, 1], components: [{ words: [], mean: [0], variance: 1 }] });
 * const r = await negativeLogLikelihood(model, new Float32Array([0.5]), "", { samples: 200 });
 * console.assert(Math.abs(r.nats - (0.5 * Math.log(2 * Math.PI) + 0.125)) < 5 * r.se + 0.01);
 * ```
 */
export async function negativeLogLikelihood(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  options: EstimatorOptions = {},
): Promise<LogLikelihood> {
  const resolved = resolveOptions(model, options);
  const outcome = await estimateContrasts(
    model,
    data,
    likelihoodPlan(prompt),
    resolved,
  );
  const [integral] = outcome.denoisingErrors;
  const d = shapeSize(model.shape);
  const constant = 0.5 * d * Math.log(2 * Math.PI * Math.E);
  return new LogLikelihood(constant + integral.nats, integral.se, resolved.samples, d, {
    space: model.decode ? "latent" : "pixels",
    logSnr: logSnrInterval(resolved.logSnr),
  });
}
