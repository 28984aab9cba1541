/**
 * The T5 tokenizer of SD 3/3.5 (`tokenizer_3`) and FLUX.1 (`tokenizer_2`), read from the folder's
 * `tokenizer.json` (SentencePiece unigram, as transformers' `T5TokenizerFast` saves it) through
 * `@huggingface/tokenizers`, and fed as diffusers' pipelines feed it: `max_length` the pipeline's
 * `max_sequence_length` (256 for SD3 and FLUX schnell, 512 for FLUX dev), truncation on, `</s>`
 * appended by the file's post-processor, padded with `<pad>` (id 0).
 *
 * The library gives ids and pieces but no character offsets, so word positions come from aligning
 * the pieces with the prompt: with the `▁` word marks and whitespace left out, the pieces spell the
 * normalized prompt, grapheme by grapheme. Where they do not (a normalizer that joins characters
 * across graphemes), word positions fail loudly instead of being guessed.
 *
 * @module
 */
import { join } from "node:path";
import { Tokenizer } from "npm:@huggingface/tokenizers@0.2.0";
import { InvalidArgumentError, ModelLoadError, PromptError } from "../../errors.ts";
import type { PromptTokens } from "../denoiser.ts";
import { exists } from "./folder.ts";
import {
  type PromptTokenizer,
  refuseSpecialTokensIn,
  spanPromptTokens,
  spanWordPositions,
  type TokenizedPrompt,
  type TokenSpan,
  type WordPositions,
} from "./prompt-tokenizer.ts";
import { readTokenizerSideFiles } from "./tokenizer.ts";

/** How a {@link T5Tokenizer} is built besides its `tokenizer.json`. */
export interface T5TokenizerOptions {
  /**
   * the pipeline's `max_sequence_length`: input ids are truncated and padded to it, `</s>`
   * included (SD3: 256 by default, up to 512; FLUX dev 512, schnell 256)
   */
  readonly maxLength: number;
  /** end-of-sequence token the post-processor appends (default `</s>`) */
  readonly eosToken?: string;
  /** padding token (default `<pad>`, id 0 in T5) */
  readonly padToken?: string;
  /** unknown-piece token (default `<unk>`) */
  readonly unkToken?: string;
  /** further special tokens a prompt may not hold (`additional_special_tokens`) */
  readonly specialTokens?: readonly string[];
  /** tokenizer_config.json, handed to the library as transformers hands it */
  readonly tokenizerConfig?: Record<string, unknown>;
}

const DEFAULT_EOS = "</s>";
const DEFAULT_PAD = "<pad>";
const DEFAULT_UNK = "<unk>";
/** What separates pieces without being spelled by one: whitespace and SentencePiece's word mark. */
const UNSPELLED = /[\s\u2581]/gu;
/** Bound on the per-prompt span cache so a long-running process cannot grow it without limit. */
const MAX_CACHE_ENTRIES = 10_000;
const EXPECTED_LAYOUT = "a T5 tokenizer folder with tokenizer.json (a SentencePiece Unigram " +
  "model, as transformers' T5TokenizerFast saves it) [+ special_tokens_map.json, " +
  "tokenizer_config.json]";

/** `tokenizer.json` as far as this code reads it. */
interface TokenizerJson {
  readonly model: { readonly type: string; readonly byte_fallback?: boolean };
  readonly added_tokens: readonly { content: string; id: number; special?: boolean }[];
  readonly post_processor?: unknown;
}

/**
 * T5's SentencePiece tokenizer, as diffusers runs `T5TokenizerFast` for SD3's and FLUX's T5
 * encoder. Build one with {@link loadT5Tokenizer}.
 *
 * @example
 * ```ts
 * import { T5Tokenizer } from "./t5-tokenizer.ts";
 * const tokenizer = new T5Tokenizer({
 *   added_tokens: [
 *     { id: 0, content: "<pad>", special: true },
 *     { id: 1, content: "</s>", special: true },
 *     { id: 2, content: "<unk>", special: true },
 *   ],
 *   normalizer: null,
 *   pre_tokenizer: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
 *   post_processor: {
 *     type: "TemplateProcessing",
 *     single: [{ Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "</s>", type_id: 0 } }],
 *     special_tokens: { "</s>": { id: "</s>", ids: [1], tokens: ["</s>"] } },
 *   },
 *   decoder: null,
 *   model: {
 *     type: "Unigram",
 *     unk_id: 2,
 *     vocab: [["<pad>", 0], ["</s>", 0], ["<unk>", 0], ["▁a", -1], ["▁cat", -2], ["s", -3]],
 *   },
 * }, { maxLength: 5 });
 * console.assert(tokenizer.inputIds("a cats").join() === "3,4,5,1,0"); // ▁a ▁cat s </s> <pad>
 * console.assert(tokenizer.wordPositions("a cats")[1].positions.join() === "1,2");
 * ```
 */
export class T5Tokenizer implements PromptTokenizer {
  /** a T5 SentencePiece tokenizer */
  readonly kind = "t5" as const;
  /** length of the padded input ids, `</s>` included: the pipeline's `max_sequence_length` */
  readonly contextLength: number;
  /** id that pads the input ids (T5: 0) */
  readonly padId: number;
  /** id of `</s>`, appended after the content */
  readonly eosId: number;
  /**
   * the special tokens a prompt may not hold ({@link T5Tokenizer.refuseSpecialTokens}): `</s>`,
   * `<pad>`, `<unk>`, every added token marked special (`<extra_id_0>` … `<extra_id_99>`) and the
   * further ones of the options, matched exactly as the tokenizer matches them
   */
  readonly specialTokens: readonly string[];

  readonly #tokenizer: Tokenizer;
  readonly #segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
  readonly #cache = new Map<string, TokenSpan[]>();

  /**
   * Builds a tokenizer from a parsed `tokenizer.json`; {@link loadT5Tokenizer} reads one from a
   * folder.
   *
   * @param tokenizerJson the parsed `tokenizer.json`
   * @param options the pipeline's max length and the folder's special tokens
   * @throws {InvalidArgumentError} the JSON is not a SentencePiece Unigram model whose
   *   post-processor appends `</s>`, a special token has no id, or the max length is not an
   *   integer ≥ 2
   */
  constructor(tokenizerJson: unknown, options: T5TokenizerOptions) {
    requireMaxLength(options.maxLength);
    const json = requireUnigram(tokenizerJson);
    this.#tokenizer = new Tokenizer(json, options.tokenizerConfig ?? {});
    const id = (key: string, token: string): number => {
      const found = this.#tokenizer.token_to_id(token);
      if (found === undefined) {
        throw new InvalidArgumentError(
          `${key} "${token}" is not in the tokenizer's vocabulary; expected a token with an id`,
        );
      }
      return found;
    };
    const eosToken = options.eosToken ?? DEFAULT_EOS;
    const padToken = options.padToken ?? DEFAULT_PAD;
    const unkToken = options.unkToken ?? DEFAULT_UNK;
    this.eosId = id("eos_token", eosToken);
    this.padId = id("pad_token", padToken);
    id("unk_token", unkToken);
    requireEosTemplate(json.post_processor, eosToken, this.eosId);
    this.contextLength = options.maxLength;
    const candidates = [
      eosToken,
      padToken,
      unkToken,
      ...json.added_tokens.filter((t) => t.special === true).map((t) => t.content),
      ...(options.specialTokens ?? []),
    ];
    this.specialTokens = [...new Set(candidates)].filter((t) => /[\p{L}\p{N}]/u.test(t));
  }

  /**
   * Throws when the text holds one of the {@link T5Tokenizer.specialTokens} (exactly: T5 splits
   * its added tokens out of the raw text). Typed into a prompt, `</s>` would end the sequence
   * early and `<extra_id_0>` is a sentinel, and their letters must not become words.
   *
   * @throws {PromptError} naming the token, where it is, and what was expected
   *
   * @example
   * ```ts
   * import { loadT5Tokenizer } from "./t5-tokenizer.ts";
   * const tokenizer = await loadT5Tokenizer("fixtures/tokenizers/t5-tiny", 256);
   * tokenizer.refuseSpecialTokens("a cat");
   * let refused = false;
   * try { tokenizer.refuseSpecialTokens("a cat <extra_id_0>"); } catch { refused = true; }
   * console.assert(refused);
   * ```
   */
  refuseSpecialTokens(text: string): void {
    refuseSpecialTokensIn(text, this.specialTokens, false);
  }

  /**
   * The prompt's content ids truncated to `maxLength − 1`, then `</s>`, no padding, and how many
   * content tokens were cut.
   *
   * @example
   * ```ts
   * import { loadT5Tokenizer } from "./t5-tokenizer.ts";
   * const tokenizer = await loadT5Tokenizer("fixtures/tokenizers/t5-tiny", 4);
   * const { ids, dropped } = tokenizer.tokenize("a photo of a cat on a mat");
   * console.assert(ids.length === 4 && ids[3] === tokenizer.eosId && dropped > 0);
   * ```
   */
  tokenize(text: string): TokenizedPrompt {
    const content = this.#contentIds(text);
    const kept = content.slice(0, this.contextLength - 1);
    return { ids: [...kept, this.eosId], dropped: content.length - kept.length };
  }

  /**
   * The T5 encoder's `input_ids` as diffusers makes them (`padding="max_length"`,
   * `truncation=True`): {@link T5Tokenizer.tokenize} padded with {@link T5Tokenizer.padId}.
   *
   * @example
   * ```ts
   * import { loadT5Tokenizer } from "./t5-tokenizer.ts";
   * const tokenizer = await loadT5Tokenizer("fixtures/tokenizers/t5-tiny", 256);
   * const ids = tokenizer.inputIds("a cat");
   * console.assert(ids.length === 256 && ids[255] === 0);
   * ```
   */
  inputIds(text: string): Int32Array {
    const ids = new Int32Array(this.contextLength).fill(this.padId);
    ids.set(this.tokenize(text).ids);
    return ids;
  }

  /**
   * For each word of the prompt (`promptWords` order), the positions in the padded input ids of
   * the pieces made from its characters (T5 has no BOS: the first piece is position 0). A piece
   * that is only the word mark `▁` belongs to the word it starts.
   *
   * @throws {PromptError} the pieces cannot be placed on the prompt's characters
   *
   * @example
   * ```ts
   * import { loadT5Tokenizer } from "./t5-tokenizer.ts";
   * const tokenizer = await loadT5Tokenizer("fixtures/tokenizers/t5-tiny", 256);
   * const words = tokenizer.wordPositions("a red cat");
   * console.assert(words.map((w) => w.word).join() === "a,red,cat" && words[0].positions[0] === 0);
   * ```
   */
  wordPositions(text: string): WordPositions[] {
    return spanWordPositions(text, this.#spans(text).slice(0, this.contextLength - 1), 0);
  }

  /**
   * How the T5 encoder reads the prompt: its content tokens (`</s>` excluded), how many fit, and
   * the words wholly or partly past the context.
   *
   * @param text the prompt
   * @param encoder the name the model gives this encoder (e.g. "text_encoder_3")
   * @throws {PromptError} the text holds a special token ({@link T5Tokenizer.refuseSpecialTokens})
   *
   * @example
   * ```ts
   * import { loadT5Tokenizer } from "./t5-tokenizer.ts";
   * const tokenizer = await loadT5Tokenizer("fixtures/tokenizers/t5-tiny", 3);
   * const read = tokenizer.promptTokens("cat dog", "text_encoder_3");
   * console.assert(read.kept === 2 && read.contextLength === 3);
   * ```
   */
  promptTokens(text: string, encoder: string): PromptTokens {
    this.refuseSpecialTokens(text);
    const capacity = this.contextLength - 1;
    const content = this.#contentIds(text);
    // Only a cut prompt needs the pieces placed on its words.
    const spans = content.length > capacity
      ? this.#spans(text)
      : content.map((id) => ({ id, start: 0, end: 0 }));
    return spanPromptTokens(text, spans, capacity, encoder, this.contextLength);
  }

  #contentIds(text: string): number[] {
    return this.#tokenizer.encode(text, { add_special_tokens: false }).ids;
  }

  /** Every content piece of the text (untruncated) with the span of the prompt it spells. */
  #spans(text: string): TokenSpan[] {
    const cached = this.#cache.get(text);
    if (cached) return cached;
    const { ids, tokens } = this.#tokenizer.encode(text, { add_special_tokens: false });
    const spans = alignPieces(text, ids, tokens, this.#spelled(text));
    if (this.#cache.size >= MAX_CACHE_ENTRIES) this.#cache.clear();
    this.#cache.set(text, spans);
    return spans;
  }

  /**
   * The characters the pieces must spell, each with the span of the grapheme it came from: every
   * grapheme normalized as the tokenizer normalizes text, whitespace and `▁` left out.
   */
  #spelled(text: string): SpelledChar[] {
    const normalizer = this.#tokenizer.normalizer;
    const chars: SpelledChar[] = [];
    for (const { segment, index } of this.#segmenter.segment(text)) {
      const normalized = normalizer ? normalizer.normalize(segment) : segment;
      for (const char of normalized.replace(UNSPELLED, "")) {
        chars.push({ char, start: index, end: index + segment.length });
      }
    }
    return chars;
  }
}

/** One character of the normalized prompt and the span of the grapheme it came from. */
interface SpelledChar {
  readonly char: string;
  readonly start: number;
  readonly end: number;
}

/**
 * Places each piece on the prompt: its characters (less `▁` and whitespace) must be the next ones
 * the prompt spells. A piece that is only `▁` takes the span of the character it precedes, as the
 * Rust tokenizer's offsets do.
 */
function alignPieces(
  text: string,
  ids: readonly number[],
  pieces: readonly string[],
  spelled: readonly SpelledChar[],
): TokenSpan[] {
  let at = 0;
  const spans = pieces.map((piece, i): TokenSpan => {
    const chars = Array.from(piece.replace(UNSPELLED, ""));
    if (chars.length === 0) {
      const next = spelled[at];
      return { id: ids[i], start: next?.start ?? text.length, end: next?.end ?? text.length };
    }
    chars.forEach((char, k) => {
      if (spelled[at + k]?.char !== char) throw misaligned(text, piece, i, spelled, at);
    });
    const span = { id: ids[i], start: spelled[at].start, end: spelled[at + chars.length - 1].end };
    at += chars.length;
    return span;
  });
  if (at !== spelled.length) throw misaligned(text, "(end)", pieces.length, spelled, at);
  return spans;
}

function misaligned(
  text: string,
  piece: string,
  index: number,
  spelled: readonly SpelledChar[],
  at: number,
): PromptError {
  const rest = spelled.slice(at, at + 12).map((c) => c.char).join("");
  return new PromptError(
    `cannot place the T5 tokenizer's piece ${index} ("${piece}") of the prompt "${text}" on its ` +
      `characters: the normalized prompt goes on "${rest}". Expected the pieces, less "▁" and ` +
      `whitespace, to spell the prompt's characters normalized one by one; word positions would ` +
      `be a guess, so none are given. Rewrite the characters near "${rest}" (e.g. in their NFKC ` +
      `form)`,
  );
}

function requireMaxLength(maxLength: number): void {
  if (!Number.isInteger(maxLength) || maxLength < 2) {
    throw new InvalidArgumentError(
      `maxLength must be an integer ≥ 2 (room for a token and </s>), got ${maxLength}; ` +
        `expected the pipeline's max_sequence_length, e.g. 256 or 512`,
    );
  }
}

/** The parsed tokenizer.json, checked to be a SentencePiece Unigram model with added tokens. */
function requireUnigram(value: unknown): TokenizerJson {
  const json = value as Partial<TokenizerJson> | null;
  const model = json?.model;
  if (typeof json !== "object" || json === null || typeof model !== "object" || model === null) {
    throw new InvalidArgumentError(
      `tokenizer.json holds no "model" object; expected a SentencePiece Unigram model`,
    );
  }
  if (model.type !== "Unigram" || model.byte_fallback === true) {
    throw new InvalidArgumentError(
      `tokenizer.json holds a ${model.type} model${
        model.byte_fallback ? " with byte_fallback" : ""
      }; expected T5's SentencePiece Unigram model (type "Unigram", no byte fallback)`,
    );
  }
  if (!Array.isArray(json.added_tokens)) {
    throw new InvalidArgumentError(`tokenizer.json has no "added_tokens" array`);
  }
  return json as TokenizerJson;
}

/**
 * The post-processor must append `</s>` and nothing else, as T5's TemplateProcessing "$A </s>"
 * does: that is what transformers' fast tokenizer feeds the encoder.
 */
function requireEosTemplate(processor: unknown, eosToken: string, eosId: number): void {
  const p = processor as {
    type?: unknown;
    single?: unknown;
    special_tokens?: Record<string, { ids?: unknown }>;
  } | null;
  const single = Array.isArray(p?.single) ? p.single : [];
  const special = single[1]?.SpecialToken?.id;
  const ok = p?.type === "TemplateProcessing" && single.length === 2 &&
    single[0]?.Sequence?.id === "A" && special === eosToken &&
    JSON.stringify(p.special_tokens?.[eosToken]?.ids) === JSON.stringify([eosId]);
  if (!ok) {
    throw new InvalidArgumentError(
      `tokenizer.json's post_processor is ${JSON.stringify(processor)?.slice(0, 200)}; expected ` +
        `T5's TemplateProcessing that appends ${eosToken} (id ${eosId}) to the sequence ("$A ` +
        `${eosToken}"), which is what T5TokenizerFast feeds the encoder`,
    );
  }
}

/**
 * Loads the T5 tokenizer of an SD3 (`tokenizer_3/`) or FLUX (`tokenizer_2/`) export from its
 * `tokenizer.json`, with special tokens from `special_tokens_map.json` / `tokenizer_config.json`
 * (defaults `</s>`, `<pad>`, `<unk>`).
 *
 * @param dir path of the tokenizer folder
 * @param maxLength the pipeline's `max_sequence_length` (SD3 256 by default, up to 512; FLUX dev
 *   512, schnell 256)
 * @throws {ModelLoadError} the folder or its tokenizer.json is missing, or a file is malformed
 * @throws {InvalidArgumentError} maxLength is not an integer ≥ 2
 *
 * @example
 * ```ts
 * import { loadT5Tokenizer } from "./t5-tokenizer.ts";
 * const tokenizer = await loadT5Tokenizer("fixtures/tokenizers/t5-tiny", 256);
 * console.assert(tokenizer.contextLength === 256 && tokenizer.padId === 0 && tokenizer.eosId === 1);
 * ```
 */
export async function loadT5Tokenizer(dir: string, maxLength: number): Promise<T5Tokenizer> {
  requireMaxLength(maxLength); // the caller's argument, not the folder's
  const path = join(dir, "tokenizer.json");
  if (!await exists(path)) {
    const what = await exists(dir) ? `missing ${path}` : `tokenizer folder ${dir} does not exist`;
    const spiece = await exists(join(dir, "spiece.model"))
      ? `; the folder has only spiece.model: save it as tokenizer.json with transformers ` +
        `(T5TokenizerFast.from_pretrained(dir).save_pretrained(dir))`
      : "";
    throw new ModelLoadError(`${what}; expected ${EXPECTED_LAYOUT}${spiece}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch (e) {
    throw new ModelLoadError(`${path} is not valid JSON; expected ${EXPECTED_LAYOUT}`, {
      cause: e,
    });
  }
  const files = await readTokenizerSideFiles(dir);
  try {
    return new T5Tokenizer(json, {
      maxLength,
      eosToken: files.special("eos_token"),
      padToken: files.special("pad_token"),
      unkToken: files.special("unk_token"),
      specialTokens: files.specialTokens,
      tokenizerConfig: files.tokenizerConfig,
    });
  } catch (e) {
    if (!(e instanceof InvalidArgumentError)) throw e;
    throw new ModelLoadError(`${dir}: ${e.message}`, { cause: e });
  }
}
