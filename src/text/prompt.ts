/**
 * Words of a prompt and word-bounded removal. Removing "red" from "a red circle" must not also cut
 * "red" out of "reddish" (the reference code's substring replace does; REFERENCE §8).
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
 * The prompt with one occurrence of a word removed at word boundaries, whitespace collapsed.
 * Matching is case-insensitive; the rest of the prompt keeps its case and punctuation.
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
  const joined = prompt.slice(0, match.start) + replacement + prompt.slice(match.end);
  return joined.replace(/\s+/g, " ").replace(/\s+([,.;:!?])/g, "$1").trim();
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
