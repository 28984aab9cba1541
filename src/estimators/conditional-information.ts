/**
 * Conditional information of one word, i(x; word | rest of the prompt).
 *
 * @module
 */
import { PromptError } from "../errors.ts";
import type { Denoiser } from "../models/denoiser.ts";
import { normaliseWord, promptWords, removePhrase, removeWord } from "../text/prompt.ts";
import type { RemoveWordOptions } from "../text/prompt.ts";
import { type ContrastPlan, contrastPlan, estimateContrasts } from "./contrasts.ts";
import type { EstimatorOptions } from "./options.ts";
import { resolveOptions } from "./options.ts";
import type { TokenInformation } from "./results.ts";
import { unseenWords } from "./truncation.ts";

/** Options of {@link conditionalInformation}: estimator options plus how the word is removed. */
export type ConditionalOptions = EstimatorOptions & RemoveWordOptions;

/**
 * The contrast plan of {@link conditionalInformation}: the prompt against the prompt without the
 * word. Without `occurrence`, EVERY occurrence of the word goes (at word boundaries, the one
 * removal rule of every study: {@link removePhrase}); removing only the first would leave a
 * repeated word in its own context, and its information would silently come out near 0. With
 * `occurrence: k`, only that token position goes (what `perToken` asks about).
 *
 * @example
 * ```ts
 * import { conditionalPlan } from "./conditional-information.ts";
 * console.assert(conditionalPlan("a red circle", "red").prompts[1] === "a circle");
 * console.assert(conditionalPlan("red and red", "red").prompts[1] === "and");
 * console.assert(conditionalPlan("red and red", "red", { occurrence: 1 }).prompts[1] === "red and");
 * ```
 */
export function conditionalPlan(
  prompt: string,
  word: string,
  removal: RemoveWordOptions = {},
): ContrastPlan {
  const context = removal.occurrence === undefined
    ? removePhrase(prompt, word, { placeholder: removal.placeholder })
    : removeWord(prompt, word, removal);
  return contrastPlan([[prompt, context]]);
}

/**
 * i(x; w | c): the information the word adds to the rest of the prompt c (the prompt with the
 * word removed at word boundaries, or replaced by a placeholder): every occurrence of it, or only
 * the `occurrence`-th (see {@link conditionalPlan}). `index` is the position of the first word
 * removed.
 *
 * @example
 * ```ts
 * import { mixtureModel } from "../query/oracles.ts";
 * import { conditionalInformation } from "./conditional-information.ts";
 * const model = mixtureModel({ shape: [1, 1, 2], components: [
 *   { words: ["red", "circle"], mean: [1, 0], variance: 0.2 }, { words: ["blue", "circle"], mean: [0, 1], variance: 0.2 }] });
 * const r = await conditionalInformation(model, model.sample("red", { seed: 2 }), "a red circle", "red", { samples: 50 });
 * console.assert(r.context === "a circle" && r.estimate.nats > 0);
 * ```
 */
export async function conditionalInformation(
  model: Denoiser,
  data: Float32Array,
  prompt: string,
  word: string,
  options: ConditionalOptions = {},
): Promise<TokenInformation> {
  const plan = conditionalPlan(prompt, word, options);
  const context = plan.prompts[1];
  const target = normaliseWord(word);
  const positions = promptWords(prompt).flatMap((w, i) => w.word === target ? [i] : []);
  const removed = options.occurrence === undefined ? positions.keys() : [options.occurrence];
  for (const occurrence of removed) refuseTruncated(model, prompt, [word], occurrence);
  const outcome = await estimateContrasts(model, data, plan, resolveOptions(model, options));
  const [result] = outcome.contrasts;
  const index = positions[options.occurrence ?? 0]; // the plan has checked it exists
  return { word: target, index, context, estimate: result.estimate, map: result.map };
}

/**
 * Throws when a word (its `occurrence`-th appearance) lies past the context of every text encoder:
 * the model never sees it, so its information cannot be estimated.
 *
 * @throws {PromptError} naming the word and the context
 *
 * @example
 * ```ts
 * import { refuseTruncated } from "./conditional-information.ts";
 * const model = { name: "m", truncatedWords: () => [1] } as never;
 * let refused = false;
 * try { refuseTruncated(model, "a red", ["red"]); } catch { refused = true; }
 * console.assert(refused);
 * ```
 */
export function refuseTruncated(
  model: Denoiser,
  prompt: string,
  words: readonly string[],
  occurrence = 0,
): void {
  const truncated = unseenWords(model, prompt);
  if (truncated.size === 0) return;
  const all = promptWords(prompt);
  for (const word of words) {
    const target = normaliseWord(word);
    const index = all.flatMap((w, i) => w.word === target ? [i] : [])[occurrence];
    if (index !== undefined && truncated.has(index)) {
      throw new PromptError(
        `"${word}" lies past ${model.name}'s text-encoder context in the prompt "${prompt}", so ` +
          `the model never sees it and its information cannot be estimated; expected a word ` +
          `within the context (shorten the prompt)`,
      );
    }
  }
}
