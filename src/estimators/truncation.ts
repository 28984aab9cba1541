/**
 * Prompts longer than a text encoder's context. The model sees only the tokens that fit, so every
 * estimate is about what it sees: the engine asks the model how each prompt of a plan is read
 * (`Denoiser.encoderTokens`), warns once, records every cut prompt (the results' provenance), and
 * refuses a contrast whose two prompts are cut differently — e.g. the full prompt is cut but the
 * prompt without a word fits, so the word's "information" would also hold the cut-off words —
 * unless `allowTruncation` is set.
 *
 * @module
 */
import { PromptError } from "../errors.ts";
import type { CutWord, Denoiser, PromptTokens } from "../models/denoiser.ts";
import { promptWords } from "../text/prompt.ts";
import { warn } from "../warnings.ts";

/** One prompt as one of the model's text encoders cuts it: what provenance records. */
export interface PromptTruncation extends PromptTokens {
  /** the prompt */
  readonly prompt: string;
}

/** A contrast whose two prompts one encoder cuts differently. */
export interface UnevenContrast {
  /** the encoder */
  readonly encoder: string;
  /** the richer prompt and how the encoder reads it */
  readonly with: { readonly prompt: string; readonly tokens?: PromptTokens };
  /** the poorer prompt and how the encoder reads it */
  readonly without: { readonly prompt: string; readonly tokens?: PromptTokens };
}

/** What {@link checkTruncation} found in a plan. */
export interface TruncationCheck {
  /** every cut (prompt, encoder) of the plan, in the plan's prompt order */
  readonly truncation: readonly PromptTruncation[];
  /** the contrasts whose prompts are cut differently (allowed only with `allowTruncation`) */
  readonly uneven: readonly UnevenContrast[];
}

/** The prompts and contrasts of a plan (a `ContrastPlan`; typed here so no import cycle forms). */
interface PlanPrompts {
  readonly prompts: readonly string[];
  readonly contrasts: readonly { readonly with: number; readonly without: number }[];
}

/**
 * Every (prompt, encoder) of the list that the model's context cuts, in order; `[]` for a model
 * without a context limit.
 *
 * @throws {PromptError} a prompt holds a special token of an encoder's tokenizer
 *
 * @example
 * ```ts
 * import { planTruncation } from "./truncation.ts";
 * const model = {
 *   name: "m",
 *   encoderTokens: (p: string) => [{ encoder: "clip", contextLength: 3, kept: 1, total: p.split(" ").length,
 *     cutWords: p.split(" ").slice(1).map((word, i) => ({ word, index: i + 1, partly: false })) }],
 * } as never;
 * const cut = planTruncation(model, ["red circle", "red"]);
 * console.assert(cut.length === 1 && cut[0].prompt === "red circle" && cut[0].cutWords[0].word === "circle");
 * ```
 */
export function planTruncation(
  model: Denoiser,
  prompts: readonly string[],
): PromptTruncation[] {
  return prompts.flatMap((prompt) =>
    readPrompt(model, prompt).filter(isCut).map((tokens) => ({ prompt, ...tokens }))
  );
}

/**
 * Indices (in `promptWords` order) of the words the model never sees: wholly past the context of
 * every encoder that reads the prompt (a word past CLIP's 77 tokens but within a T5's 256 is
 * seen). From `encoderTokens`, or `truncatedWords` for a backend that has only that.
 *
 * @example
 * ```ts
 * import { unseenWords } from "./truncation.ts";
 * const model = { name: "m", truncatedWords: () => [2] } as never;
 * console.assert([...unseenWords(model, "a b c")].join() === "2");
 * ```
 */
export function unseenWords(model: Denoiser, prompt: string): Set<number> {
  if (!model.encoderTokens) return new Set(model.truncatedWords?.(prompt) ?? []);
  const reads = model.encoderTokens(prompt);
  if (reads.length === 0) return new Set();
  const wholly = reads.map((r) => new Set(r.cutWords.filter((w) => !w.partly).map((w) => w.index)));
  return new Set([...wholly[0]].filter((index) => wholly.every((set) => set.has(index))));
}

/**
 * Reads every prompt of a plan through the model's encoders and checks its contrasts: a contrast
 * is cut evenly when neither prompt is cut, when both lose the same tail (the same tokens and
 * words), or when the poorer prompt is whole and holds none of the words the richer one loses
 * (the null prompt of a total). Any other contrast would also measure the cut-off words.
 *
 * @param allow `allowTruncation`: estimate uneven contrasts anyway (they are still reported)
 * @throws {PromptError} for a contrast cut unevenly (unless `allow`), naming the prompts, the
 *   words each loses and the option; or for a prompt holding a special token
 *
 * @example
 * ```ts
 * import { checkTruncation } from "./truncation.ts";
 * // an encoder that keeps 2 words
 * const model = {
 *   name: "m",
 *   encoderTokens: (p: string) => {
 *     const words = p.split(" ").filter(Boolean);
 *     return [{ encoder: "clip", contextLength: 4, kept: Math.min(2, words.length), total: words.length,
 *       cutWords: words.slice(2).map((word, i) => ({ word, index: i + 2, partly: false })) }];
 *   },
 * } as never;
 * const total = { prompts: ["a red circle", ""], contrasts: [{ with: 0, without: 1 }] };
 * console.assert(checkTruncation(model, total, false).truncation.length === 1); // allowed: warned
 * const about = { prompts: ["a red circle", "a circle"], contrasts: [{ with: 0, without: 1 }] };
 * let refused = false;
 * try { checkTruncation(model, about, false); } catch { refused = true; }
 * console.assert(refused && checkTruncation(model, about, true).uneven.length === 1);
 * ```
 */
export function checkTruncation(
  model: Denoiser,
  plan: PlanPrompts,
  allow: boolean,
): TruncationCheck {
  const reads = plan.prompts.map((prompt) => readPrompt(model, prompt));
  const truncation = plan.prompts.flatMap((prompt, k) =>
    reads[k].filter(isCut).map((tokens) => ({ prompt, ...tokens }))
  );
  if (truncation.length === 0) return { truncation, uneven: [] };
  const uneven = plan.contrasts.flatMap((c) => {
    const encoders = new Set([...reads[c.with], ...reads[c.without]].map((r) => r.encoder));
    return [...encoders].flatMap((encoder) => {
      const richer = reads[c.with].find((r) => r.encoder === encoder);
      const poorer = reads[c.without].find((r) => r.encoder === encoder);
      return cutEvenly(richer, poorer, plan.prompts[c.without]) ? [] : [{
        encoder,
        with: { prompt: plan.prompts[c.with], tokens: richer },
        without: { prompt: plan.prompts[c.without], tokens: poorer },
      }];
    });
  });
  if (uneven.length > 0 && !allow) throw new PromptError(unevenMessage(model, uneven));
  return { truncation, uneven };
}

/**
 * The one warning of an estimate whose prompts the context cuts: which encoder, how many tokens
 * it sees of the first cut prompt, the words it loses, and whether uneven contrasts were allowed.
 * Silent when nothing is cut.
 *
 * @example
 * ```ts
 * import { warnTruncation } from "./truncation.ts";
 * import { setWarningHandler } from "../warnings.ts";
 * const seen: string[] = [];
 * const previous = setWarningHandler((m) => seen.push(m));
 * const cut = { prompt: "a red circle", encoder: "clip", contextLength: 4, kept: 2, total: 3,
 *   cutWords: [{ word: "circle", index: 2, partly: false }] };
 * warnTruncation({ name: "m" } as never, { truncation: [cut], uneven: [] });
 * warnTruncation({ name: "m" } as never, { truncation: [], uneven: [] });
 * setWarningHandler(previous);
 * console.assert(seen.length === 1 && seen[0].includes("loses 1 word(s) that lie past its context (circle)"));
 * ```
 */
export function warnTruncation(model: Denoiser, check: TruncationCheck): void {
  const [first, ...rest] = check.truncation;
  if (!first) return;
  const others = new Set(rest.map((t) => t.prompt).filter((p) => p !== first.prompt)).size;
  warn(
    `infodiff: ${model.name}'s ${first.encoder} sees ${first.kept} of the ${first.total} tokens ` +
      `of the prompt "${abbreviate(first.prompt)}" (context ${first.contextLength}) and loses ` +
      `${cutPhrase(first)}` +
      (others > 0 ? `; ${others} other prompt(s) of this estimate are cut too` : "") +
      (check.uneven.length > 0
        ? `; allowTruncation: ${check.uneven.length} contrast(s) compare prompts cut ` +
          `differently, so they also measure the cut-off words`
        : "") +
      `. The numbers are about what the model sees (provenance.truncation lists every cut prompt)`,
  );
}

function readPrompt(model: Denoiser, prompt: string): readonly PromptTokens[] {
  return model.encoderTokens?.(prompt) ?? [];
}

function isCut(tokens: PromptTokens): boolean {
  return tokens.kept < tokens.total;
}

/** Whether one encoder cuts a contrast's two prompts alike (see {@link checkTruncation}). */
function cutEvenly(
  richer: PromptTokens | undefined,
  poorer: PromptTokens | undefined,
  poorerPrompt: string,
): boolean {
  const richerCut = richer !== undefined && isCut(richer);
  const poorerCut = poorer !== undefined && isCut(poorer);
  if (!poorerCut) {
    if (!richerCut) return true;
    // the poorer prompt sees all of itself: fine unless it holds words the richer one loses
    const words = new Set(promptWords(poorerPrompt).map((w) => w.word));
    return !richer.cutWords.some((w) => words.has(w.word));
  }
  return richerCut && dropped(richer) === dropped(poorer) &&
    sameWords(richer.cutWords, poorer.cutWords);
}

function dropped(tokens: PromptTokens): number {
  return tokens.total - tokens.kept;
}

function sameWords(a: readonly CutWord[], b: readonly CutWord[]): boolean {
  return a.length === b.length &&
    a.every((w, i) => w.word === b[i].word && w.partly === b[i].partly);
}

function unevenMessage(model: Denoiser, uneven: readonly UnevenContrast[]): string {
  const [first] = uneven;
  const context = (first.with.tokens ?? first.without.tokens)!.contextLength;
  const loses = (side: UnevenContrast["with"]) =>
    `"${abbreviate(side.prompt)}" ${
      side.tokens && isCut(side.tokens) ? `loses ${cutPhrase(side.tokens)}` : "fits"
    }`;
  const more = uneven.length > 1 ? ` (and ${uneven.length - 1} more contrast(s) like it)` : "";
  return `${model.name}'s ${first.encoder} (context ${context} tokens) cuts the two prompts of a ` +
    `contrast differently: ${loses(first.with)}, but ${loses(first.without)}${more}. Their ` +
    `difference would also measure the words one of them loses and the other keeps, not only ` +
    `the words the contrast is about. Expected prompts within the context (shorten the prompt), ` +
    `or allowTruncation: true (on a query: .allowTruncation()) to estimate it anyway, which the ` +
    `result's provenance records`;
}

/** "N word(s) that lie past its context (a, b, partly c)", at most 8 words named. */
function cutPhrase(tokens: PromptTokens): string {
  const words = tokens.cutWords;
  if (words.length === 0) {
    return `${dropped(tokens)} token(s) of punctuation that lie past its context`;
  }
  const named = words.slice(0, 8).map((w) => (w.partly ? `partly ${w.word}` : w.word));
  const rest = words.length > 8 ? `, … ${words.length - 8} more` : "";
  return `${words.length} word(s) that lie past its context (${named.join(", ")}${rest})`;
}

function abbreviate(prompt: string): string {
  return prompt.length <= 80 ? prompt : `${prompt.slice(0, 77)}…`;
}
