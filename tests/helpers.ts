/** Small mixtures with known answers, shared by the estimator tests. */
import { mixtureModel } from "../src/query/oracles.ts";
import type { MixtureModel } from "../src/query/oracles.ts";

/** A wide log-SNR range: the truncated tails contribute < 0.01 nats for these mixtures. */
export const WIDE = { loc: 1, scale: 2, clip: 5 } as const;
/** Stated allowance for the truncation of the log-SNR range to [−9, 11] (see WIDE). */
export const TRUNCATION_ALLOWANCE = 0.01;

/** Three overlapping components in 4 dimensions carrying colour and shape words. */
export function colourShapeMixture(): MixtureModel {
  return mixtureModel({
    shape: [1, 2, 2],
    components: [
      { words: ["red", "circle"], mean: [1, 0.5, 0, 0], variance: 0.3 },
      { words: ["blue", "circle"], mean: [0, 0, 1, 0.5], variance: 0.3 },
      { words: ["red", "square"], mean: [0.5, 1, 0, 0.5], variance: 0.2, weight: 2 },
    ],
  });
}

/** Two words, one component each, overlapping: I(X;Y) strictly between 0 and log 2. */
export function twoWordMixture(): MixtureModel {
  return mixtureModel({
    shape: [2, 1, 2],
    components: [
      { words: ["red"], mean: [0.6, 0, 0.3, 0], variance: 0.25 },
      { words: ["blue"], mean: [0, 0.6, 0, 0.3], variance: 0.25 },
    ],
  });
}

/** Asserts |estimate − truth| ≤ k·se + allowance, with a message that shows the numbers. */
export function assertWithin(
  estimate: { nats: number; se: number },
  truth: number,
  k = 3,
  allowance = TRUNCATION_ALLOWANCE,
): void {
  const gap = Math.abs(estimate.nats - truth);
  if (!(gap <= k * estimate.se + allowance)) {
    throw new Error(
      `estimate ${estimate.nats.toFixed(4)} ± ${estimate.se.toFixed(4)} is ${
        (gap / estimate.se).toFixed(2)
      } SE from the truth ${truth.toFixed(4)} (allowed ${k} SE + ${allowance})`,
    );
  }
}
