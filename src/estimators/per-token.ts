/**
 * Per-word decomposition: every word's conditional information and map, from one pass.
 *
 * @module
 */
import type { Denoiser } from "../models/denoiser.ts";
import { promptWords, removeWord } from "../text/prompt.ts";
import { contrastPlan, estimateContrasts } from "./contrasts.ts";
import { Estimate } from "./estimate.ts";
import { Heatmap } from "../images/heatmap.ts";
import type { ContrastPlan } from "./contrasts.ts";
import type { EstimatorOptions } from "./options.ts";
import { resolveOptions } from "./options.ts";
import { PerTokenResult } from "./results.ts";
import { unseenWords } from "./truncation.ts";

/** Options of {@link perTokenInformation}. */
export interface PerTokenOptions extends EstimatorOptions {
  /** replace each word with this text instead of deleting it (the reference's editing uses "_") */
  readonly placeholder?: string;
}

/** One word of a per-token plan: the word, its position, and the prompt without it. */
export interface PerTokenWord {
  /** the word, lower-cased */
  readonly word: string;
  /** its position among the prompt's words */
  readonly index: number;
  /** the prompt with this occurrence removed (or replaced by the placeholder) */
  readonly context: string;
}

/**
 * The contrasts of a per-token decomposition: first i(x; prompt) against "", then for every word
 * occurrence the full prompt against the prompt without that occurrence.
 *
 * @example
 * ```ts
 * import { perTokenPlan } from "./per-token.ts";
 * const { words, plan } = perTokenPlan("a red a");
 * console.assert(words[2].context === "a red" && plan.contrasts.length === 4);
 * ```
 */
export function perTokenPlan(
  prompt: string,
  placeholder?: string,
  truncated: ReadonlySet<number> = new Set(),
): { words: PerTokenWord[]; plan: ContrastPlan } {
  const seen = new Map<string, number>();
  const words = promptWords(prompt).map((w, index) => {
    const occurrence = seen.get(w.word) ?? 0;
    seen.set(w.word, occurrence + 1);
    return {
      word: w.word,
      index,
      context: removeWord(prompt, w.word, { occurrence, placeholder }),
    };
  });
  // words past the context are not evaluated: removing them changes nothing the model sees
  const evaluated = words.filter((w) => !truncated.has(w.index));
  const plan = contrastPlan([
    [prompt, ""],
    ...evaluated.map((w) => [prompt, w.context] as const),
  ]);
  // contrast 0 is the whole prompt; a precision target of "words" covers the rest
  return { words, plan: { ...plan, words: evaluated.map((_, k) => k + 1) } };
}

/**
 * For every word of the prompt, i(x; word | prompt without that occurrence), plus the total
 * i(x; prompt). All conditions (the full prompt, every context, the null prompt) are evaluated on
 * the same (α, ε) draws in shared batches, so the words are compared on common random numbers.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../query/oracles.ts";
 * import { perTokenInformation } from "./per-token.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red", "circle"], mean: [1, 0], variance: 0.2 }, { words: ["blue", "circle"], mean: [0, 1], variance: 0.2 }] });
 * const r = await perTokenInformation(model, model.sample("red", { seed: 2 }), "a red circle", { samples: 50 });
 * console.assert(r.tokens.length === 3 && r.token("a").estimate.nats === 0);
 * ```
 */
export async function perTokenInformation(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  options: PerTokenOptions = {},
): Promise<PerTokenResult> {
  const truncated = unseenWords(model, prompt);
  const { words, plan } = perTokenPlan(prompt, options.placeholder, truncated);
  const resolved = resolveOptions(model, options);
  // the engine warns about the cut prompt once (words past the context get no estimate, NaN)
  const outcome = await estimateContrasts(model, data, plan, resolved);
  const [total, ...perWord] = outcome.contrasts;
  let next = 0;
  const [, height, width] = model.shape;
  return new PerTokenResult(
    prompt,
    total.estimate,
    words.map((t) => {
      if (truncated.has(t.index)) {
        return {
          word: t.word,
          index: t.index,
          context: t.context,
          estimate: new Estimate(NaN, NaN, resolved.samples),
          map: new Heatmap(width, height, new Float32Array(width * height)), // not an estimate
          truncated: true,
        };
      }
      const contrast = perWord[next++];
      return { ...t, estimate: contrast.estimate, map: contrast.map };
    }),
  );
}
