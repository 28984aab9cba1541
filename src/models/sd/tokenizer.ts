/**
 * The CLIP tokenizer of Stable Diffusion, read from a model's `tokenizer/` folder: text cleanup,
 * CLIP's split regex, GPT-2 byte-level encoding and BPE with `</w>` word ends (REFERENCE §7), as
 * transformers' slow `CLIPTokenizer` runs them without ftfy (what diffusers' pipelines feed the
 * encoders; tests/tokenizer-parity.test.ts pins the ids to Python's).
 * Special tokens, their ids and the context length come from the folder's files, so the same code
 * serves SD 1.x (pads with `<|endoftext|>`), SD 2.x (pads with `!`) and small custom vocabularies.
 *
 * The BPE is written here rather than taken from `@huggingface/tokenizers`: that library gives the
 * same ids but no character offsets, and {@link ClipTokenizer.wordPositions} needs to know which
 * characters every token came from.
 *
 * @module
 */
import { join } from "node:path";
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

export type { PromptTokenizer, TokenizedPrompt, WordPositions } from "./prompt-tokenizer.ts";

/** Everything a {@link ClipTokenizer} is built from (what {@link loadTokenizer} reads from files). */
export interface ClipTokenizerConfig {
  /** token → id, byte-level token strings as in `vocab.json` */
  readonly vocab: ReadonlyMap<string, number>;
  /** merge rules in priority order (line order of `merges.txt`, header excluded) */
  readonly merges: readonly (readonly [string, string])[];
  /** begin-of-text token, e.g. `<|startoftext|>` */
  readonly bosToken: string;
  /** end-of-text token, e.g. `<|endoftext|>` */
  readonly eosToken: string;
  /** padding token: `<|endoftext|>` in SD 1.x, `!` in SD 2.x */
  readonly padToken: string;
  /** token for BPE pieces missing from the vocabulary; without one such a piece is an error */
  readonly unkToken?: string;
  /** length of the padded input ids, BOS and EOS included (77 for Stable Diffusion) */
  readonly contextLength: number;
  /**
   * further special tokens (added tokens marked special, `additional_special_tokens`): like
   * BOS/EOS, a prompt may not hold them
   */
  readonly specialTokens?: readonly string[];
  /**
   * tokens split out of the text whole before CLIP's split, as transformers' added-token trie
   * does (exact case), each read as its own id: `added_tokens_decoder` of tokenizer_config.json
   * (or tokenizer.json's `added_tokens`) where the folder has one, else BOS, EOS, pad, unk and
   * the further special tokens (transformers adds those). This is why SD 2.x's and SDXL
   * `tokenizer_2`'s "!" pad turns every typed "!" into id 0, not "!</w>" (256)
   */
  readonly addedTokens?: readonly string[];
}

/** One regex match of the split pattern: its text (lower-cased) and UTF-16 span in the original. */
interface Piece {
  readonly text: string;
  readonly start: number;
  readonly end: number;
}

const DEFAULT_BOS = "<|startoftext|>";
const DEFAULT_EOS = "<|endoftext|>";
const DEFAULT_CONTEXT_LENGTH = 77;
/** Larger `model_max_length` values are Hugging Face's "no limit" sentinel (1e30), not a length. */
const MAX_SANE_CONTEXT_LENGTH = 100_000;
const END_OF_WORD = "</w>";
const EXPECTED_LAYOUT =
  "a tokenizer folder with vocab.json + merges.txt [+ special_tokens_map.json, tokenizer_config.json]" +
  " (or a tokenizer.json holding a BPE model)";
/** Python's `\s` for str (what CLIP's `re` patterns use); JS `\s` differs in \x1c-\x1f, \x85, \ufeff. */
const PY_SPACE =
  "\\t\\n\\v\\f\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";
/** Bound on the per-piece BPE cache so a long-running process cannot grow it without limit. */
const MAX_CACHE_ENTRIES = 100_000;

/**
 * Byte-level BPE tokenizer with CLIP's pre-processing. Build one with {@link loadTokenizer}.
 *
 * @example
 * ```ts
 * import { ClipTokenizer } from "./tokenizer.ts";
 * const vocab = new Map<string, number>([["<s>", 0], ["</s>", 1], ["hi</w>", 2], ["h", 3]]);
 * const tokenizer = new ClipTokenizer({
 *   vocab,
 *   merges: [["h", "i</w>"]],
 *   bosToken: "<s>",
 *   eosToken: "</s>",
 *   padToken: "</s>",
 *   contextLength: 4,
 * });
 * console.assert(tokenizer.encode("Hi").join() === "0,2,1");
 * ```
 */
export class ClipTokenizer implements PromptTokenizer {
  /** a CLIP byte-level BPE tokenizer */
  readonly kind = "clip" as const;
  /** id of the begin-of-text token */
  readonly bosId: number;
  /** id of the end-of-text token */
  readonly eosId: number;
  /** id used to pad input ids to {@link ClipTokenizer.contextLength} */
  readonly padId: number;
  /** length of the padded input ids, BOS and EOS included */
  readonly contextLength: number;
  /**
   * the special tokens a prompt may not hold ({@link ClipTokenizer.refuseSpecialTokens}): BOS,
   * EOS, pad, unk and the further ones of the config, less any without a letter or digit (SD
   * 2.x pads with "!", which in a prompt is plain punctuation)
   */
  readonly specialTokens: readonly string[];

  readonly #vocab: ReadonlyMap<string, number>;
  readonly #ranks: Map<string, number>;
  readonly #unkId: number | undefined;
  readonly #specials: Map<string, number>;
  readonly #split: RegExp;
  readonly #added: Map<string, number>;
  readonly #addedPattern: RegExp | null;
  readonly #cache = new Map<string, number[]>();

  /**
   * Builds a tokenizer from an in-memory vocabulary; {@link loadTokenizer} reads one from files.
   *
   * @param config vocabulary, merges, special tokens and context length
   * @throws {InvalidArgumentError} a special token is not in the vocabulary, or the context length
   *   is not an integer ≥ 2
   */
  constructor(config: ClipTokenizerConfig) {
    if (!Number.isInteger(config.contextLength) || config.contextLength < 2) {
      throw new InvalidArgumentError(
        `contextLength must be an integer ≥ 2 (room for BOS and EOS), got ${config.contextLength}`,
      );
    }
    this.#vocab = config.vocab;
    this.bosId = requireId(config.vocab, "bosToken", config.bosToken);
    this.eosId = requireId(config.vocab, "eosToken", config.eosToken);
    this.padId = requireId(config.vocab, "padToken", config.padToken);
    this.#unkId = config.unkToken === undefined
      ? undefined
      : requireId(config.vocab, "unkToken", config.unkToken);
    this.contextLength = config.contextLength;
    this.#ranks = new Map(config.merges.map(([a, b], rank) => [`${a} ${b}`, rank]));
    // CLIP seeds its BPE cache with its two special tokens: typed into a prompt they stay whole.
    this.#specials = new Map([
      [config.bosToken.toLowerCase(), this.bosId],
      [config.eosToken.toLowerCase(), this.eosId],
    ]);
    this.#split = splitPattern(config.bosToken, config.eosToken);
    const candidates = [
      config.bosToken,
      config.eosToken,
      config.padToken,
      ...(config.unkToken === undefined ? [] : [config.unkToken]),
      ...(config.specialTokens ?? []),
    ];
    this.specialTokens = [...new Set(candidates)].filter((t) => /[\p{L}\p{N}]/u.test(t));
    const added = (config.addedTokens ?? candidates).filter((t) => t !== "");
    this.#added = new Map(added.map((t) => [t, requireId(config.vocab, "addedTokens", t)]));
    this.#addedPattern = added.length === 0 ? null : new RegExp(
      [...this.#added.keys()].sort((a, b) => b.length - a.length).map(escapeRegExp).join("|"),
      "gu",
    );
  }

  /**
   * Throws when the text holds one of the {@link ClipTokenizer.specialTokens} (matched as CLIP
   * matches them, ignoring case). Typed into a prompt, `<|endoftext|>` is encoded as the control
   * token itself (CLIP keeps it whole), and its letters would make "endoftext" a prompt word
   * whose "information" is that of a control token: neither is a word of the prompt.
   *
   * @throws {PromptError} naming the token, where it is, and what was expected
   *
   * @example
   * ```ts
   * import { ClipTokenizer } from "./tokenizer.ts";
   * const tokenizer = new ClipTokenizer({
   *   vocab: new Map([["<|startoftext|>", 0], ["<|endoftext|>", 1], ["a</w>", 2]]),
   *   merges: [],
   *   bosToken: "<|startoftext|>",
   *   eosToken: "<|endoftext|>",
   *   padToken: "<|endoftext|>",
   *   contextLength: 8,
   * });
   * tokenizer.refuseSpecialTokens("a"); // plain text passes
   * let refused = false;
   * try { tokenizer.refuseSpecialTokens("a <|EndOfText|> a"); } catch { refused = true; }
   * console.assert(refused);
   * ```
   */
  refuseSpecialTokens(text: string): void {
    refuseSpecialTokensIn(text, this.specialTokens, true);
  }

  /**
   * How the text encoder reads the text: its content tokens (BOS/EOS excluded), how many fit the
   * context, and the words wholly or partly past it (`partly`: some of the word's tokens fit).
   *
   * @param text the prompt
   * @param encoder the name the model gives this encoder (default "text_encoder")
   * @throws {PromptError} the text holds a special token ({@link ClipTokenizer.refuseSpecialTokens})
   *
   * @example
   * ```ts
   * import { ClipTokenizer } from "./tokenizer.ts";
   * const tokenizer = new ClipTokenizer({
   *   vocab: new Map([["<s>", 0], ["</s>", 1], ["a</w>", 2], ["b</w>", 3]]),
   *   merges: [],
   *   bosToken: "<s>",
   *   eosToken: "</s>",
   *   padToken: "</s>",
   *   contextLength: 4, // BOS, two tokens, EOS
   * });
   * const read = tokenizer.promptTokens("a b a");
   * console.assert(read.kept === 2 && read.total === 3);
   * console.assert(read.cutWords.length === 1 && read.cutWords[0].index === 2);
   * ```
   */
  promptTokens(text: string, encoder = "text_encoder"): PromptTokens {
    this.refuseSpecialTokens(text);
    const capacity = this.contextLength - 2;
    return spanPromptTokens(text, this.#sourcedTokens(text), capacity, encoder, this.contextLength);
  }

  /**
   * Token ids with BOS and EOS, no padding. Tokens beyond the context length are cut off (EOS
   * stays last); `tokenize` also says how many were dropped.
   *
   * @example
   * ```ts
   * import { ClipTokenizer } from "./tokenizer.ts";
   * const tokenizer = new ClipTokenizer({
   *   vocab: new Map([["<s>", 0], ["</s>", 1], ["a</w>", 2], ["b</w>", 3]]),
   *   merges: [],
   *   bosToken: "<s>",
   *   eosToken: "</s>",
   *   padToken: "</s>",
   *   contextLength: 6,
   * });
   * console.assert(tokenizer.encode("A b").join() === "0,2,3,1");
   * // Stable Diffusion's tokenizer: "a photo of a cat" → [49406, 320, 1125, 539, 320, 2368, 49407]
   * ```
   */
  encode(text: string): number[] {
    // Tokens past the context are dropped silently here: the estimators ask encoderTokens which
    // words were cut, record them in provenance and warn once per query.
    return this.tokenize(text).ids;
  }

  /**
   * Like {@link ClipTokenizer.encode} but silent: returns the ids and the number of dropped tokens.
   *
   * @example
   * ```ts
   * import { ClipTokenizer } from "./tokenizer.ts";
   * const tokenizer = new ClipTokenizer({
   *   vocab: new Map([["<s>", 0], ["</s>", 1], ["a</w>", 2], ["b</w>", 3]]),
   *   merges: [],
   *   bosToken: "<s>",
   *   eosToken: "</s>",
   *   padToken: "</s>",
   *   contextLength: 6,
   * });
   * const { ids, dropped } = tokenizer.tokenize("a b a b a b");
   * console.assert(ids.join() === "0,2,3,2,3,1" && dropped === 2);
   * ```
   */
  tokenize(text: string): TokenizedPrompt {
    const tokens = this.#sourcedTokens(text);
    const kept = tokens.slice(0, this.contextLength - 2).map((t) => t.id);
    return { ids: [this.bosId, ...kept, this.eosId], dropped: tokens.length - kept.length };
  }

  /**
   * The text encoder's `input_ids`: {@link ClipTokenizer.encode} padded with {@link padId} to
   * {@link contextLength}. Convert to `BigInt64Array` where the graph takes int64.
   *
   * @example
   * ```ts
   * import { ClipTokenizer } from "./tokenizer.ts";
   * const tokenizer = new ClipTokenizer({
   *   vocab: new Map([["<s>", 0], ["</s>", 1], ["a</w>", 2], ["b</w>", 3]]),
   *   merges: [],
   *   bosToken: "<s>",
   *   eosToken: "</s>",
   *   padToken: "</s>",
   *   contextLength: 6,
   * });
   * console.assert(tokenizer.inputIds("a b").join() === "0,2,3,1,1,1");
   * ```
   */
  inputIds(text: string): Int32Array {
    const ids = new Int32Array(this.contextLength).fill(this.padId);
    ids.set(this.encode(text));
    return ids;
  }

  /**
   * For each word of the prompt (as `promptWords` finds them), the positions in the padded
   * input ids of the tokens made from its characters. A word cut off by truncation gets `[]`.
   *
   * @example
   * ```ts
   * import { ClipTokenizer } from "./tokenizer.ts";
   * const tokenizer = new ClipTokenizer({
   *   vocab: new Map([["<s>", 0], ["</s>", 1], ["a</w>", 2], ["b</w>", 3], [",</w>", 4]]),
   *   merges: [],
   *   bosToken: "<s>",
   *   eosToken: "</s>",
   *   padToken: "</s>",
   *   contextLength: 6,
   * });
   * const words = tokenizer.wordPositions("a, b");
   * console.assert(words.map((w) => `${w.word}:${w.positions}`).join() === "a:1,b:3"); // 2 is ","
   * // Stable Diffusion's tokenizer: "the man's hat" → the: [1], man's: [2, 3], hat: [4]
   * ```
   */
  wordPositions(text: string): WordPositions[] {
    // first position 1: position 0 holds BOS
    return spanWordPositions(text, this.#sourcedTokens(text).slice(0, this.contextLength - 2), 1);
  }

  /**
   * All content tokens of the text (no BOS/EOS, untruncated), each with its piece's span. Added
   * tokens are split out first (longest first), then each stretch between them is lower-cased and
   * split by CLIP's pattern on its own, as transformers does.
   */
  #sourcedTokens(text: string): TokenSpan[] {
    const tokens: TokenSpan[] = [];
    let from = 0;
    const plain = (to: number) => {
      for (const piece of splitPieces(text.slice(from, to), this.#split)) {
        for (const id of this.#pieceIds(piece.text)) {
          tokens.push({ id, start: from + piece.start, end: from + piece.end });
        }
      }
    };
    for (const m of this.#addedPattern ? text.matchAll(this.#addedPattern) : []) {
      plain(m.index);
      tokens.push({ id: this.#added.get(m[0])!, start: m.index, end: m.index + m[0].length });
      from = m.index + m[0].length;
    }
    plain(text.length);
    return tokens;
  }

  /** Token ids of one split piece, cached. */
  #pieceIds(piece: string): number[] {
    const special = this.#specials.get(piece);
    if (special !== undefined) return [special];
    const cached = this.#cache.get(piece);
    if (cached) return cached;
    const ids = bytePairEncode(byteLevel(piece), this.#ranks).map((token) =>
      this.#tokenId(token, piece)
    );
    if (this.#cache.size >= MAX_CACHE_ENTRIES) this.#cache.clear();
    this.#cache.set(piece, ids);
    return ids;
  }

  #tokenId(token: string, piece: string): number {
    const id = this.#vocab.get(token) ?? this.#unkId;
    if (id === undefined) {
      throw new PromptError(
        `BPE token "${token}" of "${piece}" is not in the vocabulary and the tokenizer has no ` +
          `unk_token; expected a vocabulary with every byte symbol (and its "${END_OF_WORD}" form)`,
      );
    }
    return id;
  }
}

/**
 * Loads the tokenizer of a Stable Diffusion export from its `tokenizer/` folder: `vocab.json` +
 * `merges.txt` (or `tokenizer.json`), special tokens from `special_tokens_map.json` /
 * `tokenizer_config.json` (defaults `<|startoftext|>`, `<|endoftext|>`, pad = EOS) and the context
 * length from `model_max_length` (77 when absent or Hugging Face's "unlimited" sentinel).
 *
 * @param dir path of the tokenizer folder
 * @returns the tokenizer
 * @throws {ModelLoadError} a file is missing or malformed, or a special token is not in the vocab
 *
 * @example
 * ```ts
 * import { loadTokenizer } from "./tokenizer.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/vocab.json`, JSON.stringify({ "<s>": 0, "</s>": 1, "hi</w>": 2 }));
 * await Deno.writeTextFile(`${dir}/merges.txt`, "#version: 0.2\nh i</w>\n");
 * await Deno.writeTextFile(
 *   `${dir}/special_tokens_map.json`,
 *   JSON.stringify({ bos_token: "<s>", eos_token: { content: "</s>" } }),
 * );
 * const tokenizer = await loadTokenizer(dir); // e.g. "models/sd-2-1-base/tokenizer"
 * console.assert(tokenizer.encode("Hi").join() === "0,2,1" && tokenizer.contextLength === 77);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadTokenizer(dir: string): Promise<ClipTokenizer> {
  await requireFolder(dir);
  const { tokenizerConfig, special, specialTokens } = await readTokenizerSideFiles(dir);
  const { vocab, merges, source, addedSpecial, added } = await readBpeModel(dir, tokenizerConfig);
  const bosToken = special("bos_token") ?? DEFAULT_BOS;
  const eosToken = special("eos_token") ?? DEFAULT_EOS;
  // Hugging Face's CLIPTokenizer pads with EOS unless told otherwise (SD 1.x leaves it so).
  const padToken = special("pad_token") ?? eosToken;
  const unkToken = special("unk_token");
  const specials = {
    bos_token: bosToken,
    eos_token: eosToken,
    pad_token: padToken,
    unk_token: unkToken,
  };
  for (const [key, token] of Object.entries(specials)) {
    if (token !== undefined && !vocab.has(token)) {
      throw new ModelLoadError(
        `${key} "${token}" of ${dir} is not in the vocabulary (${source}); expected every special ` +
          `token of special_tokens_map.json / tokenizer_config.json to have an id there`,
      );
    }
  }
  return new ClipTokenizer({
    vocab,
    merges,
    bosToken,
    eosToken,
    padToken,
    unkToken,
    contextLength: contextLengthOf(tokenizerConfig, dir),
    specialTokens: [...addedSpecial, ...specialTokens],
    addedTokens: decoderTokens(tokenizerConfig) ?? added,
  });
}

/** What a tokenizer folder's side files say: {@link readTokenizerSideFiles}. */
export interface TokenizerSideFiles {
  /** tokenizer_config.json, when the folder has one */
  readonly tokenizerConfig?: Record<string, unknown>;
  /**
   * a special token by key ("eos_token", "pad_token", …): special_tokens_map.json first, then
   * tokenizer_config.json; undefined when neither names it
   */
  special(key: string): string | undefined;
  /**
   * the further special tokens the files list: `additional_special_tokens` of both files and
   * the tokens of `added_tokens_decoder` marked special
   */
  readonly specialTokens: readonly string[];
}

/**
 * Reads a tokenizer folder's `special_tokens_map.json` and `tokenizer_config.json` (both
 * optional), as every tokenizer of a pipeline (CLIP, T5) is described by them. Special tokens may
 * be plain strings or AddedToken objects `{"content": …}`.
 *
 * @throws {ModelLoadError} a file is not valid JSON, or a special token is neither a string nor
 *   an object with a content string
 *
 * @example
 * ```ts
 * import { readTokenizerSideFiles } from "./tokenizer.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/special_tokens_map.json`, JSON.stringify({
 *   eos_token: { content: "</s>" },
 *   additional_special_tokens: ["<extra_id_0>"],
 * }));
 * const files = await readTokenizerSideFiles(dir);
 * console.assert(files.special("eos_token") === "</s>" && files.special("pad_token") === undefined);
 * console.assert(files.specialTokens.join() === "<extra_id_0>" && files.tokenizerConfig === undefined);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function readTokenizerSideFiles(dir: string): Promise<TokenizerSideFiles> {
  const specialMap = await readOptionalJson(join(dir, "special_tokens_map.json"));
  const tokenizerConfig = await readOptionalJson(join(dir, "tokenizer_config.json"));
  return {
    tokenizerConfig,
    special: (key: string): string | undefined =>
      tokenContent(specialMap?.[key], key, dir) ?? tokenContent(tokenizerConfig?.[key], key, dir),
    specialTokens: [
      ...additionalSpecials(specialMap, dir),
      ...additionalSpecials(tokenizerConfig, dir),
      ...decoderSpecials(tokenizerConfig),
    ],
  };
}

/** `additional_special_tokens` of special_tokens_map.json or tokenizer_config.json. */
function additionalSpecials(json: Json | undefined, dir: string): string[] {
  const list = json?.additional_special_tokens;
  if (!Array.isArray(list)) return [];
  return list.flatMap((t) => tokenContent(t, "additional_special_tokens", dir) ?? []);
}

/** Every token of tokenizer_config.json's `added_tokens_decoder`; undefined without one. */
function decoderTokens(tokenizerConfig: Json | undefined): string[] | undefined {
  const decoder = tokenizerConfig?.added_tokens_decoder;
  if (!isObject(decoder)) return undefined;
  return Object.values(decoder).flatMap((t) =>
    isObject(t) && typeof t.content === "string" ? [t.content] : []
  );
}

/** Tokens of tokenizer_config.json's `added_tokens_decoder` marked `"special": true`. */
function decoderSpecials(tokenizerConfig: Json | undefined): string[] {
  const decoder = tokenizerConfig?.added_tokens_decoder;
  if (!isObject(decoder)) return [];
  return Object.values(decoder).flatMap((t) =>
    isObject(t) && t.special === true && typeof t.content === "string" ? [t.content] : []
  );
}

// ---------------------------------------------------------------------------------------------
// Text → pieces

/**
 * CLIP's split pattern (case-insensitive), with the folder's own BOS/EOS strings kept whole, and
 * every CJK ideograph a piece of its own: BasicTokenizer puts spaces around each one
 * (`_tokenize_chinese_chars`), so "日本の猫" is 日, 本, の, 猫.
 */
function splitPattern(bosToken: string, eosToken: string): RegExp {
  const specials = [bosToken, eosToken].map(escapeRegExp).join("|");
  return new RegExp(
    `${specials}|'s|'t|'re|'ve|'m|'ll|'d|[${CJK}]|(?:(?![${CJK}])\\p{L})+|[\\p{N}]|` +
      `[^${PY_SPACE}\\p{L}\\p{N}]+`,
    "giu",
  );
}

/** The CJK ideograph blocks of BasicTokenizer._is_chinese_char. */
const CJK = "\\u{4E00}-\\u{9FFF}\\u{3400}-\\u{4DBF}\\u{20000}-\\u{2A6DF}\\u{2A700}-\\u{2B73F}" +
  "\\u{2B740}-\\u{2B81F}\\u{2B820}-\\u{2CEAF}\\u{F900}-\\u{FAFF}\\u{2F800}-\\u{2FA1F}";

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\\/]/g, "\\$&");
}

/**
 * Cleans, normalizes and lower-cases the text as transformers' slow CLIPTokenizer does without
 * ftfy (its BasicTokenizer: control and format characters dropped, NFC, lower-case), then splits
 * it with the pattern, keeping each piece's span in the ORIGINAL text (whole graphemes). CLIP's
 * whitespace collapse and strip need no step of their own: no alternative of the pattern matches
 * whitespace, so they cannot change the pieces.
 */
function splitPieces(text: string, pattern: RegExp): Piece[] {
  let normalized = "";
  const starts: number[] = [], ends: number[] = [];
  for (const { segment, index } of GRAPHEMES.segment(text)) {
    // NFC one grapheme at a time: composition never crosses a grapheme boundary.
    const clean = Array.from(segment, cleanChar).join("").normalize("NFC");
    normalized += clean;
    for (let k = 0; k < clean.length; k++) {
      starts.push(index);
      ends.push(index + segment.length);
    }
  }
  // The whole text lower-cased at once, as Python lowers whole words (final sigma: "ΟΔΟΣ" → "οδος").
  const lower = normalized.toLowerCase();
  const origin = lower.length === normalized.length
    ? null
    : lowercaseOrigins(normalized, lower.length);
  const source = (i: number): number => origin ? origin[i] : i;
  return [...lower.matchAll(pattern)].map((m) => ({
    text: m[0],
    start: starts[source(m.index)],
    end: ends[source(m.index + m[0].length - 1)],
  }));
}

const GRAPHEMES = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/**
 * BasicTokenizer._clean_text for one character: NUL, U+FFFD and every control, format, private
 * or unassigned character (category C, tab and newlines aside) are dropped ("zero\u200bwidth" is
 * one word); the rest stays (whitespace is never matched by the pattern).
 */
function cleanChar(char: string): string {
  if (char === "\t" || char === "\n" || char === "\r") return " ";
  return char === "\ufffd" || /\p{C}/u.test(char) ? "" : char;
}

/**
 * For each UTF-16 unit of `text.toLowerCase()`, the offset of the original unit it came from.
 * Needed only when lower-casing changes the length (e.g. "İ" → "i̇"); per-code-point lower-casing
 * gives the same lengths as the whole-string one (the only contextual rule, final sigma, is 1:1).
 */
function lowercaseOrigins(text: string, lowerLength: number): Int32Array {
  const origin = new Int32Array(lowerLength);
  let out = 0;
  let offset = 0;
  for (const char of text) {
    const units = char.toLowerCase().length;
    for (let k = 0; k < units; k++) origin[out++] = offset + Math.min(k, char.length - 1);
    offset += char.length;
  }
  return origin;
}

// ---------------------------------------------------------------------------------------------
// Byte-level BPE

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
const BYTE_TO_UNICODE: readonly string[] = (() => {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = [];
  let next = 256;
  for (let b = 0; b < 256; b++) table[b] = String.fromCharCode(printable(b) ? b : next++);
  return table;
})();

const UTF8 = new TextEncoder();

/** The piece's UTF-8 bytes, one byte-level symbol each. */
function byteLevel(piece: string): string[] {
  return Array.from(UTF8.encode(piece), (b) => BYTE_TO_UNICODE[b]);
}

/**
 * CLIP's BPE: `</w>` joins the last symbol, then the adjacent pair with the lowest merge rank is
 * merged everywhere (left to right, non-overlapping) until no ranked pair is left.
 */
function bytePairEncode(symbols: string[], ranks: ReadonlyMap<string, number>): string[] {
  let word = [...symbols.slice(0, -1), symbols[symbols.length - 1] + END_OF_WORD];
  while (word.length > 1) {
    const best = lowestRankedPair(word, ranks);
    if (best === null) break;
    word = mergePair(word, best[0], best[1]);
  }
  return word;
}

function lowestRankedPair(
  word: readonly string[],
  ranks: ReadonlyMap<string, number>,
): [string, string] | null {
  let best: [string, string] | null = null;
  let bestRank = Infinity;
  for (let i = 0; i + 1 < word.length; i++) {
    const rank = ranks.get(`${word[i]} ${word[i + 1]}`);
    if (rank !== undefined && rank < bestRank) {
      bestRank = rank;
      best = [word[i], word[i + 1]];
    }
  }
  return best;
}

function mergePair(word: readonly string[], first: string, second: string): string[] {
  const merged: string[] = [];
  for (let i = 0; i < word.length; i++) {
    if (word[i] === first && i + 1 < word.length && word[i + 1] === second) {
      merged.push(first + second);
      i++;
    } else {
      merged.push(word[i]);
    }
  }
  return merged;
}

// ---------------------------------------------------------------------------------------------
// Folder reading

async function requireFolder(dir: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new ModelLoadError(
        `tokenizer folder ${dir} does not exist; expected ${EXPECTED_LAYOUT}`,
      );
    }
    throw e;
  }
  if (!info.isDirectory) {
    throw new ModelLoadError(`${dir} is not a folder; expected ${EXPECTED_LAYOUT}`);
  }
}

type Json = Record<string, unknown>;

async function readJson(path: string): Promise<unknown> {
  const text = await Deno.readTextFile(path);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new ModelLoadError(`${path} is not valid JSON; expected ${EXPECTED_LAYOUT}`, {
      cause: e,
    });
  }
}

async function readOptionalJson(path: string): Promise<Json | undefined> {
  if (!await exists(path)) return undefined;
  const value = await readJson(path);
  if (!isObject(value)) throw new ModelLoadError(`${path} must hold a JSON object`);
  return value;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** A BPE model as read from files: vocabulary, merges, and the added tokens marked special. */
interface BpeModel {
  readonly vocab: Map<string, number>;
  readonly merges: [string, string][];
  /** the file the vocabulary came from, for messages */
  readonly source: string;
  /** tokenizer.json's `added_tokens` with `"special": true` */
  readonly addedSpecial: readonly string[];
  /** every token of tokenizer.json's `added_tokens`; undefined when read from vocab.json */
  readonly added?: readonly string[];
}

/** Vocabulary and merges from vocab.json + merges.txt, else from tokenizer.json. */
async function readBpeModel(
  dir: string,
  tokenizerConfig: Json | undefined,
): Promise<BpeModel> {
  const vocabPath = join(dir, "vocab.json");
  const mergesPath = join(dir, "merges.txt");
  const tokenizerJsonPath = join(dir, "tokenizer.json");
  const [hasVocab, hasMerges] = [await exists(vocabPath), await exists(mergesPath)];
  if ((!hasVocab || !hasMerges) && await exists(tokenizerJsonPath)) {
    return readTokenizerJson(tokenizerJsonPath, tokenizerConfig);
  }
  for (const [path, present] of [[vocabPath, hasVocab], [mergesPath, hasMerges]] as const) {
    if (!present) throw new ModelLoadError(`missing ${path}; expected ${EXPECTED_LAYOUT}`);
  }
  const vocab = vocabMap(await readJson(vocabPath), vocabPath);
  addDecoderTokens(vocab, tokenizerConfig);
  const merges = parseMerges(await Deno.readTextFile(mergesPath), mergesPath);
  return { vocab, merges, source: vocabPath, addedSpecial: [] };
}

async function readTokenizerJson(
  path: string,
  tokenizerConfig: Json | undefined,
): Promise<BpeModel> {
  const json = await readJson(path);
  const model = isObject(json) ? json.model : undefined;
  if (
    !isObject(model) || model.type !== "BPE" ||
    (model.end_of_word_suffix ?? END_OF_WORD) !== END_OF_WORD
  ) {
    throw new ModelLoadError(
      `${path} does not hold a CLIP BPE model; expected model.type "BPE" with end_of_word_suffix ` +
        `"${END_OF_WORD}", or ${EXPECTED_LAYOUT}`,
    );
  }
  const vocab = vocabMap(model.vocab, `${path} (model.vocab)`);
  if (!Array.isArray(model.merges)) throw new ModelLoadError(`${path} has no model.merges array`);
  const merges = model.merges.map((merge, line) =>
    typeof merge === "string"
      ? mergeLine(merge, `${path} model.merges[${line}]`)
      : mergeArray(merge, `${path} model.merges[${line}]`)
  );
  const added = isObject(json) && Array.isArray(json.added_tokens) ? json.added_tokens : [];
  const addedSpecial: string[] = [], addedTokens: string[] = [];
  for (const token of added) {
    if (isObject(token) && typeof token.content === "string" && Number.isInteger(token.id)) {
      vocab.set(token.content, token.id as number);
      addedTokens.push(token.content);
      if (token.special === true) addedSpecial.push(token.content);
    }
  }
  addDecoderTokens(vocab, tokenizerConfig);
  return { vocab, merges, source: path, addedSpecial, added: addedTokens };
}

function vocabMap(value: unknown, where: string): Map<string, number> {
  if (!isObject(value)) throw new ModelLoadError(`${where} must be a JSON object token → id`);
  const vocab = new Map<string, number>();
  for (const [token, id] of Object.entries(value)) {
    if (!Number.isInteger(id) || (id as number) < 0) {
      throw new ModelLoadError(`${where}: token "${token}" has id ${id}; expected an integer ≥ 0`);
    }
    vocab.set(token, id as number);
  }
  return vocab;
}

/** tokenizer_config.json's `added_tokens_decoder` ({"49406": {content: ...}}) also assigns ids. */
function addDecoderTokens(vocab: Map<string, number>, tokenizerConfig: Json | undefined): void {
  const decoder = tokenizerConfig?.added_tokens_decoder;
  if (!isObject(decoder)) return;
  for (const [id, token] of Object.entries(decoder)) {
    if (
      isObject(token) && typeof token.content === "string" && /^\d+$/.test(id) &&
      !vocab.has(token.content)
    ) {
      vocab.set(token.content, Number(id));
    }
  }
}

function parseMerges(text: string, path: string): [string, string][] {
  const lines = text.split(/\r?\n/);
  const body = lines[0]?.startsWith("#version") ? lines.slice(1) : lines;
  return body.flatMap((line, i) =>
    line.trim() === "" ? [] : [mergeLine(line, `${path} line ${i + 2}`)]
  );
}

function mergeLine(line: string, where: string): [string, string] {
  const parts = line.trim().split(" ");
  if (parts.length !== 2 || parts[0] === "" || parts[1] === "") {
    throw new ModelLoadError(
      `${where}: "${line}" is not a merge; expected two symbols separated by one space`,
    );
  }
  return [parts[0], parts[1]];
}

function mergeArray(value: unknown, where: string): [string, string] {
  if (!Array.isArray(value) || value.length !== 2 || !value.every((s) => typeof s === "string")) {
    throw new ModelLoadError(`${where} is not a merge; expected "a b" or ["a", "b"]`);
  }
  return [value[0], value[1]];
}

/** A special token given as a plain string or as an object `{content: "..."}` (AddedToken). */
function tokenContent(value: unknown, key: string, dir: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value === "string") return value;
  if (isObject(value) && typeof value.content === "string") return value.content;
  throw new ModelLoadError(
    `${key} in ${dir} is ${JSON.stringify(value)}; expected a string or {"content": "..."}`,
  );
}

function contextLengthOf(tokenizerConfig: Json | undefined, dir: string): number {
  const length = tokenizerConfig?.model_max_length;
  if (length === undefined || length === null) return DEFAULT_CONTEXT_LENGTH;
  if (typeof length !== "number" || length > MAX_SANE_CONTEXT_LENGTH) return DEFAULT_CONTEXT_LENGTH;
  if (!Number.isInteger(length) || length < 2) {
    throw new ModelLoadError(
      `model_max_length in ${join(dir, "tokenizer_config.json")} is ${length}; expected an ` +
        `integer ≥ 2 (BOS + EOS), e.g. 77`,
    );
  }
  return length;
}

function requireId(vocab: ReadonlyMap<string, number>, key: string, token: string): number {
  const id = vocab.get(token);
  if (id === undefined) {
    throw new InvalidArgumentError(
      `${key} "${token}" is not in the vocabulary; expected a token with an id`,
    );
  }
  return id;
}
