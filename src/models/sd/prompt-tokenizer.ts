/**
 * The one interface every text encoder's tokenizer implements, whatever the family: CLIP
 * (byte-level BPE, {@link ClipTokenizer}: SD 1.x/2.x, SDXL's two encoders, SD3's and FLUX's CLIP)
 * and T5 (SentencePiece unigram from `tokenizer.json`, `T5Tokenizer`: SD3's `tokenizer_3`, FLUX's
 * `tokenizer_2`). A backend holds one per encoder and asks each how it reads a prompt, so word
 * positions, the truncation report and the refusal of typed special tokens work per encoder.
 * Runtime-neutral: no onnxruntime, no file reading here.
 *
 * @module
 */
import { PromptError } from "../../errors.ts";
import { promptWords } from "../../text/prompt.ts";
import type { PromptTokens } from "../denoiser.ts";

/** A prompt as token ids, and how many tokens did not fit the context. */
export interface TokenizedPrompt {
  /**
   * token ids with the tokenizer's markers (CLIP: BOS … EOS; T5: … EOS), truncated to the
   * context, no padding
   */
  readonly ids: number[];
  /** number of content tokens cut off so that the ids fit the context length */
  readonly dropped: number;
}

/** Where one prompt word went in the padded `input_ids`. */
export interface WordPositions {
  /** the word, lower-cased (as `promptWords` gives it) */
  readonly word: string;
  /** UTF-16 offset of its first character in the original prompt */
  readonly start: number;
  /** UTF-16 offset just past its last character */
  readonly end: number;
  /**
   * indices into the padded input ids of the tokens made from its characters (CLIP: BOS is 0, so
   * the first word starts at 1; T5 has no BOS, so it starts at 0); `[]` when the context cut it off
   */
  readonly positions: number[];
}

/**
 * How a pipeline turns a prompt into one text encoder's `input_ids`, and how that encoder reads
 * the prompt's words.
 *
 * @example
 * ```ts
 * import type { PromptTokenizer } from "./prompt-tokenizer.ts";
 * import { ClipTokenizer } from "./tokenizer.ts";
 * const tokenizer: PromptTokenizer = new ClipTokenizer({
 *   vocab: new Map([["<s>", 0], ["</s>", 1], ["a</w>", 2], ["b</w>", 3]]),
 *   merges: [],
 *   bosToken: "<s>",
 *   eosToken: "</s>",
 *   padToken: "</s>",
 *   contextLength: 5,
 * });
 * console.assert(tokenizer.inputIds("a b").join() === "0,2,3,1,1");
 * console.assert(tokenizer.promptTokens("a b a b", "text_encoder").kept === 3);
 * ```
 */
export interface PromptTokenizer {
  /** which tokenizer family: CLIP's byte-level BPE or T5's SentencePiece unigram */
  readonly kind: "clip" | "t5";
  /** length of the padded input ids, markers included (CLIP 77; T5 the pipeline's max length) */
  readonly contextLength: number;
  /** id that pads the input ids to {@link PromptTokenizer.contextLength} */
  readonly padId: number;
  /**
   * The prompt's ids with the markers, truncated to the context, unpadded, and how many content
   * tokens were cut. Silent: the truncation report comes from {@link PromptTokenizer.promptTokens}.
   */
  tokenize(prompt: string): TokenizedPrompt;
  /**
   * The encoder's `input_ids` exactly as the pipeline feeds them: {@link PromptTokenizer.tokenize}
   * padded with {@link PromptTokenizer.padId} to {@link PromptTokenizer.contextLength}. Convert to
   * `BigInt64Array` where the graph takes int64.
   */
  inputIds(prompt: string): Int32Array;
  /**
   * For each word of the prompt (`promptWords` order), the positions in the padded input ids of
   * the tokens made from its characters; `[]` for a word the context cut off.
   */
  wordPositions(prompt: string): WordPositions[];
  /**
   * How this encoder reads the prompt (tokens kept of the prompt's, words wholly or partly past
   * its context), as `Denoiser.encoderTokens` reports it.
   *
   * @param encoder the name the model gives this encoder, e.g. "text_encoder_3"
   * @throws {PromptError} the prompt holds a special token of this tokenizer
   */
  promptTokens(prompt: string, encoder: string): PromptTokens;
  /**
   * Throws when the prompt holds a special token of this tokenizer typed as text (CLIP's
   * `<|endoftext|>`, T5's `</s>`, `<pad>`, `<unk>`, `<extra_id_N>`): the encoder would read a
   * control token, not words.
   *
   * @throws {PromptError} naming the token, where it is, and what was expected
   */
  refuseSpecialTokens(prompt: string): void;
}

/** One content token and the UTF-16 span of the prompt it was made from. */
export interface TokenSpan {
  /** token id */
  readonly id: number;
  /** offset of the first character it was made from */
  readonly start: number;
  /** offset just past the last character it was made from */
  readonly end: number;
}

/**
 * Word positions from token spans: a token belongs to every word its span overlaps (a CLIP piece
 * "man's" to "man's", a T5 piece ",d" to both "," neighbours' words).
 *
 * @param text the prompt
 * @param kept the content tokens within the context, in order
 * @param first position of the first content token in the padded ids (1 after CLIP's BOS, 0 for T5)
 *
 * @example
 * ```ts
 * import { spanWordPositions } from "./prompt-tokenizer.ts";
 * const words = spanWordPositions("red cat", [
 *   { id: 7, start: 0, end: 3 },
 *   { id: 8, start: 4, end: 6 },
 *   { id: 9, start: 6, end: 7 },
 * ], 1);
 * console.assert(words.map((w) => `${w.word}:${w.positions}`).join() === "red:1,cat:2,3");
 * ```
 */
export function spanWordPositions(
  text: string,
  kept: readonly TokenSpan[],
  first: number,
): WordPositions[] {
  return promptWords(text).map(({ word, start, end }) => ({
    word,
    start,
    end,
    positions: kept.flatMap((t, i) => (t.start < end && t.end > start ? [i + first] : [])),
  }));
}

/**
 * How an encoder with room for `capacity` content tokens reads a prompt made of these tokens:
 * how many fit, and the words wholly or partly past the context.
 *
 * @param text the prompt
 * @param tokens every content token of the prompt (untruncated), with its span
 * @param capacity content tokens that fit (context length less the markers)
 * @param encoder the encoder's name
 * @param contextLength the encoder's context, markers included
 *
 * @example
 * ```ts
 * import { spanPromptTokens } from "./prompt-tokenizer.ts";
 * const read = spanPromptTokens("red cat", [
 *   { id: 7, start: 0, end: 3 },
 *   { id: 8, start: 4, end: 6 },
 *   { id: 9, start: 6, end: 7 },
 * ], 2, "text_encoder_3", 3);
 * console.assert(read.kept === 2 && read.total === 3);
 * console.assert(read.cutWords[0].word === "cat" && read.cutWords[0].partly);
 * ```
 */
export function spanPromptTokens(
  text: string,
  tokens: readonly TokenSpan[],
  capacity: number,
  encoder: string,
  contextLength: number,
): PromptTokens {
  const kept = tokens.slice(0, capacity), dropped = tokens.slice(capacity);
  const overlaps = (start: number, end: number) => (t: TokenSpan) => t.start < end && t.end > start;
  const cutWords = dropped.length === 0 ? [] : promptWords(text).flatMap((w, index) => {
    const within = overlaps(w.start, w.end);
    return dropped.some(within) ? [{ word: w.word, index, partly: kept.some(within) }] : [];
  });
  return { encoder, contextLength, kept: kept.length, total: tokens.length, cutWords };
}

/**
 * Throws when the text holds one of the special tokens. Typed into a prompt, a special token is
 * read as a control token (CLIP's `<|endoftext|>`, T5's `</s>` or `<extra_id_0>`), and its letters
 * would make a prompt "word" whose information is that of a control token.
 *
 * @param text the prompt
 * @param specialTokens the tokenizer's special tokens
 * @param ignoreCase match as CLIP does (its split pattern runs on lower-cased text); T5 matches
 *   its added tokens exactly
 * @throws {PromptError} naming the token, where it is, and what was expected
 *
 * @example
 * ```ts
 * import { refuseSpecialTokensIn } from "./prompt-tokenizer.ts";
 * refuseSpecialTokensIn("a cat", ["</s>"], false);
 * let refused = false;
 * try { refuseSpecialTokensIn("a </s> cat", ["</s>"], false); } catch { refused = true; }
 * console.assert(refused);
 * ```
 */
export function refuseSpecialTokensIn(
  text: string,
  specialTokens: readonly string[],
  ignoreCase: boolean,
): void {
  const haystack = ignoreCase ? text.toLowerCase() : text;
  for (const token of specialTokens) {
    const at = haystack.indexOf(ignoreCase ? token.toLowerCase() : token);
    if (at < 0) continue;
    throw new PromptError(
      `the prompt "${text}" holds "${text.slice(at, at + token.length)}" (at character ${at}), ` +
        `a special token of the text encoder's tokenizer: the encoder would read it as a ` +
        `control token, not as words, and its letters must not become a word with ` +
        `information. Expected plain text; remove it (special tokens: ${listed(specialTokens)})`,
    );
  }
}

/** Up to 8 tokens, then how many more (a T5 has 100 `<extra_id_N>`). */
function listed(tokens: readonly string[]): string {
  const shown = tokens.length <= 8 ? tokens : tokens.slice(0, 6);
  const more = tokens.length - shown.length;
  return shown.join(" ") + (more > 0 ? ` … and ${more} more` : "");
}
