/**
 * Words of a prompt and word-bounded removal. Removing "red" from "a red circle" must not also cut
 * "red" out of "reddish" (the reference code's substring replace does; REFERENCE §8).
 *
 * One rule for removing a word: EVERY occurrence goes, at word boundaries ({@link removePhrase};
 * {@link replacePhrase} with a placeholder or a swap). Localization contexts, interventions and
 * PID's conditional contexts all use it, as the reference's `caption.replace(obj, "")` and
 * `perform_word_swaps` do; a word left in its own context would make its information exactly 0.
 * {@link removeWord} removes ONE occurrence: it is for the token-level estimators, which ask about
 * one position of the prompt (`perToken`, `about(word, { occurrence })`).
 *
 * @module
 */
import { InvalidArgumentError, PromptError } from "../errors.ts";

/** One word of a prompt: lower-cased text and its UTF-16 span in the original prompt. */
export interface PromptWord {
  /** the word, lower-cased */
  readonly word: string;
  /** offset of its first character in the prompt */
  readonly start: number;
  /** offset just past its last character */
  readonly end: number;
}

const WORD = /[\p{L}\p{N}]+(?:['’][\p{L}]+)*/gu;

/**
 * The words of a prompt in order (letters/digits, with inner apostrophes: "man's", "isn't").
 *
 * @example
 * ```ts
 * import { promptWords } from "./prompt.ts";
 * const words = promptWords("A red circle, left of it.");
 * console.assert(words.map((w) => w.word).join(" ") === "a red circle left of it");
 * ```
 */
export function promptWords(prompt: string): PromptWord[] {
  return [...prompt.matchAll(WORD)].map((m) => ({
    word: m[0].toLowerCase(),
    start: m.index,
    end: m.index + m[0].length,
  }));
}

/** Options of {@link removeWord}. */
export interface RemoveWordOptions {
  /** put this text where the word was instead of deleting it (the reference's editing uses "_") */
  readonly placeholder?: string;
  /** which occurrence to remove, counting from 0 (default: the first) */
  readonly occurrence?: number;
}

/**
 * The prompt with ONE occurrence of a word (one token position) removed at word boundaries,
 * whitespace collapsed: the token-level removal of `perToken` and `about`. To remove a word, use
 * {@link removePhrase} (every occurrence). Matching is case-insensitive; the rest of the prompt
 * keeps its case and punctuation.
 *
 * @example
 * ```ts
 * import { removeWord } from "./prompt.ts";
 * console.assert(removeWord("a red circle near a reddish square", "red") === "a circle near a reddish square");
 * console.assert(removeWord("a red circle", "red", { placeholder: "_" }) === "a _ circle");
 * ```
 */
export function removeWord(prompt: string, word: string, options: RemoveWordOptions = {}): string {
  const target = normaliseWord(word);
  const occurrence = options.occurrence ?? 0;
  if (!Number.isInteger(occurrence) || occurrence < 0) {
    throw new InvalidArgumentError(`occurrence must be a non-negative integer, got ${occurrence}`);
  }
  const matches = promptWords(prompt).filter((w) => w.word === target);
  const match = matches[occurrence];
  if (!match) {
    const known = promptWords(prompt).map((w) => w.word).join(", ");
    const which = occurrence === 0 ? "" : ` (occurrence ${occurrence}, found ${matches.length})`;
    throw new PromptError(
      `word "${word}" is not in the prompt "${prompt}"${which}; expected one of: ${
        known || "(none)"
      }`,
    );
  }
  const replacement = options.placeholder ?? "";
  return tidy(prompt.slice(0, match.start) + replacement + prompt.slice(match.end));
}

/**
 * Whitespace collapsed and no space left before punctuation: how a prompt reads after a removal.
 *
 * @example
 * ```ts
 * import { tidy } from "./prompt.ts";
 * console.assert(tidy(" a  , red ") === "a, red");
 * ```
 */
export function tidy(text: string): string {
  return text.replace(/\s+/g, " ").replace(/\s+([,.;:!?])/g, "$1").trim();
}

/**
 * Lower-cases a word and checks that it is exactly one prompt word.
 *
 * @example
 * ```ts
 * import { normaliseWord } from "./prompt.ts";
 * console.assert(normaliseWord(" Red ") === "red");
 * ```
 */
export function normaliseWord(word: string): string {
  const trimmed = word.trim();
  const words = promptWords(trimmed);
  if (words.length !== 1 || words[0].start !== 0 || words[0].end !== trimmed.length) {
    throw new InvalidArgumentError(
      `expected a single word (letters/digits, e.g. "red"), got "${word}"`,
    );
  }
  return words[0].word;
}

/**
 * Checks extra concept words (concept attention's concepts, e.g. `["sky", "dog"]`): a non-empty
 * list of non-blank strings, no two alike ignoring case; returns them trimmed. A concept may be a
 * phrase ("dining table"); ConceptAttention encodes each concept as its own text.
 *
 * @throws {InvalidArgumentError} for anything else, naming the bad entry
 *
 * @example
 * ```ts
 * import { conceptWords } from "./prompt.ts";
 * console.assert(conceptWords([" Sky", "dog"]).join("|") === "Sky|dog");
 * let refused = false;
 * try { conceptWords(["sky", " "]); } catch { refused = true; }
 * console.assert(refused);
 * ```
 */
export function conceptWords(words: readonly string[]): string[] {
  if (!Array.isArray(words) || words.length === 0) {
    throw new InvalidArgumentError(
      `concepts must be a non-empty list of words, got ${JSON.stringify(words)}; expected e.g. ` +
        `["sky", "dog"]`,
    );
  }
  const seen = new Map<string, number>();
  return words.map((word, i) => {
    if (typeof word !== "string" || word.trim() === "") {
      throw new InvalidArgumentError(
        `concept ${i} is ${JSON.stringify(word)}; expected a non-blank word such as "sky"`,
      );
    }
    const key = word.trim().toLowerCase();
    if (seen.has(key)) {
      throw new InvalidArgumentError(
        `concepts ${seen.get(key)} and ${i} are both "${word.trim()}"; expected each concept once`,
      );
    }
    seen.set(key, i);
    return word.trim();
  });
}

/**
 * The words of a phrase: "Dining table" → ["dining", "table"]; one word is a phrase of one. COCO's
 * multi-word categories ("cell phone", "teddy bear", "fire hydrant") are phrases.
 *
 * @throws {InvalidArgumentError} for an empty phrase or one with anything but words and spaces
 *
 * @example
 * ```ts
 * import { phraseWords } from "./prompt.ts";
 * console.assert(phraseWords(" Dining  table ").join("|") === "dining|table");
 * ```
 */
export function phraseWords(phrase: string): string[] {
  if (typeof phrase !== "string") {
    throw new InvalidArgumentError(`expected a word or phrase, got ${typeof phrase}`);
  }
  const words = promptWords(phrase);
  const rest = words.reduceRight(
    (text, w) => text.slice(0, w.start) + " " + text.slice(w.end),
    phrase,
  );
  if (words.length === 0 || rest.trim() !== "") {
    throw new InvalidArgumentError(
      `expected a word or a phrase of words separated by spaces (e.g. "dining table"), got "${phrase}"`,
    );
  }
  return words.map((w) => w.word);
}

/**
 * Every occurrence of a phrase in a prompt, left to right and not overlapping, as the indices of
 * its words in {@link promptWords} order (case-insensitive, at word boundaries). A possessive or
 * contraction on the last word still matches ("banana's" holds "banana"), as Python's `\b` and
 * CLIP's tokenizer (which splits off "'s") see it.
 *
 * @example
 * ```ts
 * import { phraseOccurrences } from "./prompt.ts";
 * const found = phraseOccurrences("a teddy bear hugs a teddy bear's paw", "teddy bear");
 * console.assert(JSON.stringify(found) === "[[1,2],[5,6]]");
 * ```
 */
export function phraseOccurrences(prompt: string, phrase: string): number[][] {
  return phraseSpans(prompt, phrase).map((span) => span.words);
}

interface PhraseSpan {
  /** indices of the phrase's words among the prompt's words */
  readonly words: number[];
  /** UTF-16 span of the phrase itself (a possessive "'s" after it stays outside) */
  readonly start: number;
  readonly end: number;
  /** the occurrence is the plural (the last word + "s") */
  readonly plural: boolean;
}

function phraseSpans(prompt: string, phrase: string, plural = false): PhraseSpan[] {
  const target = phraseWords(phrase);
  const words = promptWords(prompt);
  const last = target.length - 1;
  const possessive = (word: string, t: string) =>
    word === t || word.startsWith(`${t}'`) || word.startsWith(`${t}’`);
  // the length of the last word's match: the word, or (plural) the word + "s"
  const lastMatch = (word: string, t: string) =>
    possessive(word, t) ? t.length : plural && possessive(word, `${t}s`) ? t.length + 1 : 0;
  const found: PhraseSpan[] = [];
  for (let i = 0; i + target.length <= words.length;) {
    const inner = target.slice(0, last).every((t, k) => words[i + k].word === t);
    const length = inner ? lastMatch(words[i + last].word, target[last]) : 0;
    if (length > 0) {
      const end = words[i + last].start + length;
      found.push({
        words: target.map((_, k) => i + k),
        start: words[i].start,
        end,
        plural: length > target[last].length,
      });
      i += target.length;
    } else i++;
  }
  return found;
}

/** Options of {@link replacePhrase}. */
export interface ReplacePhraseOptions {
  /** what each singular occurrence becomes; a plural one gets this + "s" (default "_") */
  readonly replacement?: string;
  /** a plural occurrence becomes the bare `replacement` (as the reference's `_`), not + "s" */
  readonly pluralAsSingular?: boolean;
}

/**
 * The prompt with every occurrence of a word or phrase AND of its plural (the phrase + "s")
 * replaced at word boundaries, as the reference's intervention edits do (`perform_word_swaps`:
 * `{obj: "_", obj + "s": "_"}` to omit, `{a: b, a + "s": b + "s"}` to swap), whitespace collapsed.
 *
 * @throws {PromptError} when neither the phrase nor its plural occurs
 *
 * @example
 * ```ts
 * import { replacePhrase } from "./prompt.ts";
 * console.assert(replacePhrase("two dogs and a dog", "dog", { pluralAsSingular: true }) === "two _ and a _");
 * console.assert(replacePhrase("two dogs and a dog", "dog", { replacement: "cat" }) === "two cats and a cat");
 * console.assert(replacePhrase("a teddy bear's bow", "teddy bear") === "a _'s bow");
 * ```
 */
export function replacePhrase(
  prompt: string,
  phrase: string,
  options: ReplacePhraseOptions = {},
): string {
  const replacement = options.replacement ?? "_";
  return spliceSpans(
    prompt,
    checkedSpans(prompt, phrase, true),
    (span) => span.plural && !options.pluralAsSingular ? `${replacement}s` : replacement,
  );
}

/** The prompt with each span replaced by `put(span)` (right to left), whitespace tidied. */
function spliceSpans(
  prompt: string,
  spans: readonly PhraseSpan[],
  put: (span: PhraseSpan) => string,
): string {
  let text = prompt;
  for (const span of [...spans].reverse()) {
    text = text.slice(0, span.start) + put(span) + text.slice(span.end);
  }
  return tidy(text);
}

function checkedSpans(prompt: string, phrase: string, plural: boolean): PhraseSpan[] {
  const spans = phraseSpans(prompt, phrase, plural);
  if (spans.length > 0) return spans;
  const known = promptWords(prompt).map((w) => w.word).join(", ");
  throw new PromptError(
    `"${phrase}"${plural ? " (or its plural)" : ""} is not in the prompt "${prompt}"; expected ` +
      `one of its words: ${known || "(none)"}`,
  );
}

/** Options of {@link removePhrase}. */
export interface RemovePhraseOptions {
  /** put this text where each occurrence was instead of deleting it (interventions use "_") */
  readonly placeholder?: string;
}

/**
 * The prompt with EVERY occurrence of a word or phrase removed at word boundaries (the
 * reference's `caption.replace(obj, "")` removes every occurrence too, but as a substring, so
 * "bed" also cuts "a bedroom" to "a room"), whitespace collapsed.
 *
 * @throws {PromptError} when the phrase does not occur
 *
 * @example
 * ```ts
 * import { removePhrase } from "./prompt.ts";
 * console.assert(removePhrase("A dog and a dog in a bedroom", "dog") === "A and a in a bedroom");
 * console.assert(removePhrase("a dining table", "dining table", { placeholder: "_" }) === "a _");
 * ```
 */
export function removePhrase(
  prompt: string,
  phrase: string,
  options: RemovePhraseOptions = {},
): string {
  return spliceSpans(prompt, checkedSpans(prompt, phrase, false), () => options.placeholder ?? "");
}
