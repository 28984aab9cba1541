/**
 * Per-word decomposition: every word's conditional information and map, from one pass.
 *
 * @module
 */
import type { Model } from "../models/model.ts";
import { promptWords, removeWord } from "../models/prompt.ts";
import { estimateContrasts } from "./contrasts.ts";
import type { EstimatorOptions } from "./options.ts";
import { resolveOptions } from "./options.ts";
import { PerTokenResult } from "./results.ts";

/** Options of {@link perTokenInformation}. */
export interface PerTokenOptions extends EstimatorOptions {
  /** replace each word with this text instead of deleting it (the reference's editing uses "_") */
  readonly placeholder?: string;
}

/**
 * For every word of the prompt, i(x; word | prompt without that occurrence), plus the total
 * i(x; prompt). All conditions (the full prompt, every context, the null prompt) are evaluated on
 * the same (α, ε) draws in shared batches, so the words are compared on common random numbers.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../models/mixture.ts";
 * import { perTokenInformation } from "./per-token.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red", "circle"], mean: [1, 0], variance: 0.2 }, { words: ["blue", "circle"], mean: [0, 1], variance: 0.2 }] });
 * const r = await perTokenInformation(model, model.sample("red", { seed: 2 }), "a red circle", { samples: 50 });
 * console.assert(r.tokens.length === 3 && r.token("a").estimate.nats === 0);
 * ```
 */
export async function perTokenInformation(
  model: Model,
  data: Float32Array,
  prompt: string,
  options: PerTokenOptions = {},
): Promise<PerTokenResult> {
  const words = promptWords(prompt);
  const prompts: string[] = [prompt, ""];
  const indexOf = (p: string) => {
    const found = prompts.indexOf(p);
    return found >= 0 ? found : prompts.push(p) - 1;
  };
  const seen = new Map<string, number>();
  const tokens = words.map((w, index) => {
    const occurrence = seen.get(w.word) ?? 0;
    seen.set(w.word, occurrence + 1);
    const context = removeWord(prompt, w.word, { occurrence, placeholder: options.placeholder });
    return { word: w.word, index, context, condition: indexOf(context) };
  });
  const outcome = await estimateContrasts(
    model,
    data,
    {
      prompts,
      contrasts: [
        { with: 0, without: 1 },
        ...tokens.map((t) => ({ with: 0, without: t.condition })),
      ],
    },
    resolveOptions(model, options),
  );
  const [total, ...perWord] = outcome.contrasts;
  return new PerTokenResult(
    prompt,
    total.estimate,
    tokens.map((t, i) => ({
      word: t.word,
      index: t.index,
      context: t.context,
      estimate: perWord[i].estimate,
      map: perWord[i].map,
    })),
  );
}
