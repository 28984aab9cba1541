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
