/**
 * The CLIP tokenizer against known truth: the reference prompt → ids vectors of the real CLIP
 * vocabulary, Hugging Face's tokenizers.js on a few hundred random prompts, and small hand-made
 * vocabularies whose every id is known.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Tokenizer as HfTokenizer } from "npm:@huggingface/tokenizers@0.2.0";
import { ClipTokenizer, loadTokenizer } from "../src/models/sd/tokenizer.ts";
import { ModelLoadError, PromptError } from "../src/errors.ts";
import { Random } from "../src/numerics/random.ts";

// The real CLIP vocabulary, merges and prompt → ids vectors, copied into the repository.
const CLIP_FIXTURE = fileURLToPath(new URL("../fixtures/clip/", import.meta.url));
const BOS = 49406;
const EOS = 49407;

interface Vector {
  text: string;
  ids: number[];
}
const VECTORS: Vector[] = JSON.parse(
  await Deno.readTextFile(join(CLIP_FIXTURE, "tokenizer-vectors.json")),
);
const VOCAB: Record<string, number> = JSON.parse(
  await Deno.readTextFile(join(CLIP_FIXTURE, "vocab.json")),
);
const ID_TO_TOKEN = new Map(Object.entries(VOCAB).map(([token, id]) => [id, token]));

/** SD 2.x's files (pad "!", tokens as AddedToken objects) and SD 1.x's (pad = EOS, plain strings). */
const SD2_SPECIALS = {
  bos_token: { content: "<|startoftext|>", lstrip: false, normalized: true, rstrip: false },
  eos_token: { content: "<|endoftext|>", lstrip: false, normalized: true, rstrip: false },
  pad_token: "!",
  unk_token: { content: "<|endoftext|>", lstrip: false, normalized: true, rstrip: false },
};
const SD1_SPECIALS = {
  bos_token: "<|startoftext|>",
  eos_token: "<|endoftext|>",
  pad_token: "<|endoftext|>",
  unk_token: "<|endoftext|>",
};

/** A temporary SD-style tokenizer/ folder with the real CLIP vocab and merges. */
async function clipFolder(
  specials: object,
  config: object = { model_max_length: 77, do_lower_case: true },
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-tokenizer-" });
  await Deno.copyFile(join(CLIP_FIXTURE, "vocab.json"), join(dir, "vocab.json"));
  await Deno.copyFile(join(CLIP_FIXTURE, "merges.txt"), join(dir, "merges.txt"));
  await Deno.writeTextFile(join(dir, "special_tokens_map.json"), JSON.stringify(specials));
  await Deno.writeTextFile(join(dir, "tokenizer_config.json"), JSON.stringify(config));
  return dir;
}

async function withFolder<T>(dir: string, body: (dir: string) => Promise<T>): Promise<T> {
  try {
    return await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** GPT-2's byte ↔ symbol table, inverted: decodes byte-level tokens back to text. */
const SYMBOL_TO_BYTE = (() => {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table = new Map<string, number>();
  let next = 256;
  for (let b = 0; b < 256; b++) table.set(String.fromCharCode(printable(b) ? b : next++), b);
  return table;
})();

/** The UTF-8 bytes a CLIP token stands for (its `</w>` dropped). */
function tokenBytes(id: number): number[] {
  const token = ID_TO_TOKEN.get(id);
  assert.ok(token !== undefined, `id ${id} is not in the vocabulary`);
  return [...token.replace(/<\/w>$/, "")].map((symbol) => SYMBOL_TO_BYTE.get(symbol)!);
}

function decodeTokens(ids: number[]): string {
  return new TextDecoder().decode(new Uint8Array(ids.flatMap(tokenBytes)));
}

/** The tokenizer.json Hugging Face's CLIPTokenizerFast uses, built from vocab + merges. */
function hfClipTokenizerJson(vocab: Record<string, number>, merges: string[]): object {
  const special = (id: number, content: string) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: true,
    special: true,
  });
  return {
    version: "1.0",
    added_tokens: [special(BOS, "<|startoftext|>"), special(EOS, "<|endoftext|>")],
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "NFC" },
        { type: "Replace", pattern: { Regex: "\\s+" }, content: " " },
        { type: "Lowercase" },
      ],
    },
    pre_tokenizer: {
      type: "Sequence",
      pretokenizers: [
        {
          type: "Split",
          pattern: {
            Regex:
              "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+",
          },
          behavior: "Removed",
          invert: true,
        },
        { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: false },
      ],
    },
    post_processor: {
      type: "RobertaProcessing",
      sep: ["<|endoftext|>", EOS],
      cls: ["<|startoftext|>", BOS],
      trim_offsets: false,
      add_prefix_space: false,
    },
    decoder: { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<|endoftext|>",
      continuing_subword_prefix: "",
      end_of_word_suffix: "</w>",
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

async function sharedMerges(): Promise<string[]> {
  const lines = (await Deno.readTextFile(join(CLIP_FIXTURE, "merges.txt"))).split("\n");
  return lines.slice(1).filter((line) => line.length > 0);
}

/** Runs the body with console.warn captured; returns what was warned. */
function captureWarnings(body: () => void): string[] {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  try {
    body();
  } finally {
    console.warn = original;
  }
  return warnings;
}

Deno.test("every reference vector comes out identical, SD 2.x and SD 1.x folders", async () => {
  for (const specials of [SD2_SPECIALS, SD1_SPECIALS]) {
    await withFolder(await clipFolder(specials), async (dir) => {
      const tokenizer = await loadTokenizer(dir);
      assert.equal(tokenizer.bosId, BOS);
      assert.equal(tokenizer.eosId, EOS);
      assert.equal(tokenizer.contextLength, 77);
      // The vectors are SD 1.x's; SD 2.x's "!" pad reads a typed "!" as id 0 (next test).
      const vectors = specials === SD1_SPECIALS
        ? VECTORS
        : VECTORS.filter((v) => !v.text.includes("!"));
      for (const { text, ids } of vectors) assert.deepEqual(tokenizer.encode(text), ids, text);
    });
  }
});

Deno.test('SD 2.x and SDXL tokenizer_2 pad with "!": a typed "!" is id 0 (an added token), as transformers reads it', async () => {
  // transformers' CLIPTokenizer (4.57.6 slow and 5.25.0) on the real vocabulary: the pad token is
  // an added token, split out whole before CLIP's pattern, so "!" is 0 and never "!</w>" (256)
  // or "!!</w>" (748) as in SD 1.x. SDXL's tokenizer_2 files say so in added_tokens_decoder.
  const expected: [string, number[], number[]][] = [
    ["wow!", [2781, 0], [2781, 256]],
    ["?!", [286, 0], [2835]],
    ["wow!!!?", [2781, 0, 0, 0, 286], [2781, 1443, 6004]],
    ["a!b", [320, 0, 321], [320, 256, 321]],
  ];
  const sdxl = {
    model_max_length: 77,
    added_tokens_decoder: {
      "0": { content: "!", normalized: false, special: true },
      "49406": { content: "<|startoftext|>", normalized: true, special: false },
      "49407": { content: "<|endoftext|>", normalized: false, special: false },
    },
  };
  const sd1 = await loadTokenizerAt(SD1_SPECIALS);
  for (const config of [undefined, sdxl]) {
    const sd2 = await loadTokenizerAt(SD2_SPECIALS, config);
    for (const [text, bang, plain] of expected) {
      assert.deepEqual(sd2.encode(text), [BOS, ...bang, EOS], text);
      assert.deepEqual(sd1.encode(text), [BOS, ...plain, EOS], text);
    }
  }
  // An added_tokens_decoder without the pad: transformers splits only what it lists.
  const without = await loadTokenizerAt(SD2_SPECIALS, {
    model_max_length: 77,
    added_tokens_decoder: {},
  });
  assert.deepEqual(without.encode("wow!"), [BOS, 2781, 256, EOS]);
});

/** Loads a tokenizer from a temporary folder with the real vocabulary (removed afterwards). */
async function loadTokenizerAt(specials: object, config?: object): Promise<ClipTokenizer> {
  return await withFolder(await clipFolder(specials, config), (dir) => loadTokenizer(dir));
}

Deno.test('SD 2.x pads with 0 ("!"), SD 1.x with 49407, both to 77', async () => {
  for (const [specials, pad] of [[SD2_SPECIALS, 0], [SD1_SPECIALS, EOS]] as const) {
    await withFolder(await clipFolder(specials), async (dir) => {
      const tokenizer = await loadTokenizer(dir);
      assert.equal(tokenizer.padId, pad);
      for (const { text, ids } of VECTORS.filter((v) => pad === EOS || !v.text.includes("!"))) {
        const padded = tokenizer.inputIds(text);
        assert.equal(padded.length, 77);
        assert.deepEqual([...padded], [...ids, ...new Array(77 - ids.length).fill(pad)], text);
      }
    });
  }
});

Deno.test("a folder without tokenizer_config.json gets context 77; HF's 1e30 sentinel too", async () => {
  await withFolder(await clipFolder(SD1_SPECIALS, { model_max_length: 1e30 }), async (dir) => {
    assert.equal((await loadTokenizer(dir)).contextLength, 77);
    await Deno.remove(join(dir, "tokenizer_config.json"));
    assert.equal((await loadTokenizer(dir)).contextLength, 77);
  });
});

Deno.test("a 100-word prompt is cut to 77 ids ending in EOS; tokenize says 25 were dropped", async () => {
  // "a photo of a cat" is [320, 1125, 539, 320, 2368], one token per word (reference vector).
  const words = ["a", "photo", "of", "a", "cat"];
  const wordIds = [320, 1125, 539, 320, 2368];
  const prompt = Array.from({ length: 100 }, (_, i) => words[i % 5]).join(" ");
  const expected = [BOS, ...Array.from({ length: 75 }, (_, i) => wordIds[i % 5]), EOS];
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    let ids: number[] = [];
    const warnings = captureWarnings(() => {
      ids = tokenizer.encode(prompt);
    });
    assert.deepEqual(ids, expected);
    // quiet: the estimators mark the cut words and warn once per query instead
    assert.deepEqual(warnings, []);
    assert.deepEqual(tokenizer.tokenize(prompt), { ids: expected, dropped: 25 });
    const padded = captureWarnings(() =>
      assert.deepEqual([...tokenizer.inputIds(prompt)], expected)
    );
    assert.equal(padded.length, 0);
    const positions = tokenizer.wordPositions(prompt);
    assert.equal(positions.length, 100);
    positions.forEach((w, i) => assert.deepEqual(w.positions, i < 75 ? [i + 1] : [], `word ${i}`));
    // 75 tokens fit exactly: nothing is dropped and nothing is warned.
    const exact = Array.from({ length: 75 }, (_, i) => words[i % 5]).join(" ");
    assert.deepEqual(captureWarnings(() => assert.equal(tokenizer.encode(exact).length, 77)), []);
  });
});

Deno.test("wordPositions: the tokens at a word's positions spell that word", async () => {
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    const cases: [string, [string, number[]][]][] = [
      ["A red circle to the left of a blue square.", [
        ["a", [1]],
        ["red", [2]],
        ["circle", [3]],
        ["to", [4]],
        ["the", [5]],
        ["left", [6]],
        ["of", [7]],
        ["a", [8]],
        ["blue", [9]],
        ["square", [10]], // position 11 is ".", part of no word
      ]],
      ["the man's hat isn't red", [
        ["the", [1]],
        ["man's", [2, 3]],
        ["hat", [4]],
        ["isn't", [5, 6]],
        ["red", [7]],
      ]],
    ];
    for (const [text, expected] of cases) {
      const ids = tokenizer.inputIds(text);
      const words = tokenizer.wordPositions(text);
      assert.deepEqual(words.map((w) => [w.word, w.positions]), expected, text);
      for (const w of words) {
        assert.equal(text.slice(w.start, w.end).toLowerCase(), w.word);
        assert.equal(decodeTokens(w.positions.map((p) => ids[p])), w.word);
      }
    }
  });
});

Deno.test("wordPositions keeps original offsets through İ (lower-cases to 2 units) and emoji", async () => {
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    const text = "🐱  İstanbul's\tCAFÉ 🐶dog";
    const ids = tokenizer.inputIds(text);
    const words = tokenizer.wordPositions(text);
    assert.deepEqual(words.map((w) => [w.word, w.start, w.end]), [
      ["i\u0307stanbul's", 4, 14],
      ["café", 15, 19],
      ["dog", 22, 25],
    ]);
    for (const w of words) assert.equal(decodeTokens(w.positions.map((p) => ids[p])), w.word);
    // The emoji tokens belong to no word: every content position is either a word's or an emoji's.
    const inWords = new Set(words.flatMap((w) => w.positions));
    const content = tokenizer.encode(text).length - 2;
    const outside = Array.from({ length: content }, (_, i) => i + 1).filter((p) => !inWords.has(p));
    assert.equal(decodeTokens(outside.map((p) => ids[p])), "🐱🐶");
  });
});

Deno.test("matches Hugging Face tokenizers.js on 400 random prompts (seed 1234)", async () => {
  const hf = new HfTokenizer(hfClipTokenizerJson(VOCAB, await sharedMerges()), {
    bos_token: "<|startoftext|>",
    eos_token: "<|endoftext|>",
  });
  const fragments = [
    "a",
    "the",
    "Photo",
    "CAT",
    "dogs'",
    "man's",
    "isn't",
    "we're",
    "they've",
    "I'm",
    "you'll",
    "he'd",
    "don’t",
    "rock'n'roll",
    "'sun",
    "x'",
    "3's",
    "12",
    "2024",
    "3.14",
    "¼",
    ",",
    ".",
    "!!",
    "?!",
    "...",
    "-",
    "—",
    "&amp;",
    '"quoted"',
    "(paren)",
    "#tag",
    "@user",
    "$5",
    "100%",
    "café",
    "naïve",
    "Straße",
    "ÆØÅ",
    "ĳ",
    "İstanbul",
    "ΟΔΟΣ",
    "привет",
    "한국어", // (no CJK ideographs: tokenizers.js's CLIP is the fast one, which does not split them)
    "🐱",
    "👍🏽",
    "a🐶b",
    "antidisestablishmentarianism",
    "qzxv",
    "ZZZ",
    "tHiS",
  ];
  const spaces = [" ", " ", " ", "  ", "\t", "\n", ""];
  const random = new Random(1234);
  const letters = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
  // SD 1.x's files: tokenizers.js's CLIP here has no "!" pad (an added token in SD 2.x's).
  await withFolder(await clipFolder(SD1_SPECIALS, { model_max_length: 10_000 }), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    for (let n = 0; n < 400; n++) {
      let text = spaces[random.int(spaces.length)];
      for (let k = random.int(12); k >= 0; k--) {
        const word = random.int(4) === 0
          ? Array.from({ length: 1 + random.int(12) }, () => letters[random.int(letters.length)])
            .join("")
          : fragments[random.int(fragments.length)];
        text += word + spaces[random.int(spaces.length)];
      }
      assert.deepEqual(tokenizer.encode(text), hf.encode(text).ids, JSON.stringify(text));
      const ids = tokenizer.inputIds(text);
      for (const w of tokenizer.wordPositions(text)) {
        // A word's tokens spell the word, plus at most punctuation glued on by the split ("'sun").
        const spelled = decodeTokens(w.positions.map((p) => ids[p]));
        assert.ok(spelled.includes(w.word), `${JSON.stringify(text)}: ${w.word} vs ${spelled}`);
        assert.match(spelled.replace(w.word, ""), /^[^\p{L}\p{N}]*$/u, JSON.stringify(text));
      }
    }
  });
});

Deno.test("a folder with only tokenizer.json (no vocab.json / merges.txt) gives the same ids", async () => {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-tokenizer-" });
  await withFolder(dir, async () => {
    const json = hfClipTokenizerJson(VOCAB, await sharedMerges());
    await Deno.writeTextFile(join(dir, "tokenizer.json"), JSON.stringify(json));
    await Deno.writeTextFile(join(dir, "special_tokens_map.json"), JSON.stringify(SD2_SPECIALS));
    const tokenizer = await loadTokenizer(dir);
    assert.equal(tokenizer.padId, 0);
    for (const { text, ids } of VECTORS) assert.deepEqual(tokenizer.encode(text), ids, text);
  });
});

/**
 * A tiny custom tokenizer: "red", "circle", "square" as whole-word tokens (ids 0-2), special
 * tokens 3/4/5, the 256 byte symbols and their `</w>` forms, merges that build the three words.
 */
async function tinyFolder(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-tiny-tokenizer-" });
  const vocab: Record<string, number> = {
    "red</w>": 0,
    "circle</w>": 1,
    "square</w>": 2,
    "<bos>": 3,
    "<eos>": 4,
    "<pad>": 5,
  };
  const add = (token: string) => vocab[token] ??= Object.keys(vocab).length;
  const symbols = [...SYMBOL_TO_BYTE.keys()];
  for (const symbol of symbols) add(symbol);
  for (const symbol of symbols) add(symbol + "</w>");
  const merges: string[] = [];
  for (const word of ["red", "circle", "square"]) {
    // Left to right: r+e → re, re+d</w> → red</w>.
    let left = word[0];
    for (let i = 1; i < word.length; i++) {
      const right = i === word.length - 1 ? word[i] + "</w>" : word[i];
      merges.push(`${left} ${right}`);
      left += right;
      add(left);
    }
  }
  await Deno.writeTextFile(join(dir, "vocab.json"), JSON.stringify(vocab));
  await Deno.writeTextFile(join(dir, "merges.txt"), `#version: 0.2\n${merges.join("\n")}\n`);
  await Deno.writeTextFile(
    join(dir, "special_tokens_map.json"),
    JSON.stringify({ bos_token: "<bos>", eos_token: { content: "<eos>" }, pad_token: "<pad>" }),
  );
  await Deno.writeTextFile(
    join(dir, "tokenizer_config.json"),
    JSON.stringify({ model_max_length: 16, bos_token: "<ignored>" }), // special_tokens_map wins
  );
  return dir;
}

Deno.test("a tiny custom tokenizer takes every id and the length from its own files", async () => {
  await withFolder(await tinyFolder(), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    assert.deepEqual(
      [tokenizer.bosId, tokenizer.eosId, tokenizer.padId, tokenizer.contextLength],
      [3, 4, 5, 16],
    );
    assert.deepEqual(tokenizer.encode("Red  circle, SQUARE"), [3, 0, 1, 262 + 0x2c, 2, 4]);
    assert.deepEqual(
      [...tokenizer.inputIds("red square")],
      [3, 0, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5],
    );
    // "blue" is not a word of the vocab: byte symbols b, l, u and e</w> (ids 6 + byte, 262 + byte).
    const b = (char: string) => 6 + char.charCodeAt(0);
    assert.deepEqual(tokenizer.encode("blue"), [3, b("b"), b("l"), b("u"), 256 + b("e"), 4]);
    const words = tokenizer.wordPositions("red blue circle");
    assert.deepEqual(words.map((w) => w.positions), [[1], [2, 3, 4, 5], [6]]);
    // 20 words, 14 fit: 6 dropped.
    const long = Array(20).fill("red").join(" ");
    const warnings = captureWarnings(() =>
      assert.deepEqual(tokenizer.encode(long), [3, ...Array(14).fill(0), 4])
    );
    assert.deepEqual(warnings, []);
    assert.equal(tokenizer.tokenize(long).dropped, 6);
  });
});

Deno.test("missing folder, missing merges.txt and unknown special tokens are ModelLoadErrors", async () => {
  await assert.rejects(
    () => loadTokenizer("/nonexistent/infodiff/tokenizer"),
    (e: unknown) =>
      e instanceof ModelLoadError && e.message.includes("/nonexistent/infodiff/tokenizer") &&
      e.message.includes("vocab.json + merges.txt"),
  );
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    await Deno.remove(join(dir, "merges.txt"));
    await assert.rejects(
      () => loadTokenizer(dir),
      (e: unknown) =>
        e instanceof ModelLoadError && e.message.includes(join(dir, "merges.txt")) &&
        e.message.includes("vocab.json + merges.txt"),
    );
  });
  await withFolder(await clipFolder({ ...SD2_SPECIALS, pad_token: "<pad>" }), async (dir) => {
    await assert.rejects(
      () => loadTokenizer(dir),
      (e: unknown) =>
        e instanceof ModelLoadError && e.message.includes('pad_token "<pad>"') &&
        e.message.includes("not in the vocabulary"),
    );
  });
  await withFolder(await clipFolder(SD2_SPECIALS, { model_max_length: 1 }), async (dir) => {
    await assert.rejects(
      () => loadTokenizer(dir),
      /model_max_length .* is 1; expected an integer ≥ 2/,
    );
  });
});

Deno.test("a piece with no token and no unk_token is a PromptError naming it", () => {
  const tokenizer = new ClipTokenizer({
    vocab: new Map([["<s>", 0], ["</s>", 1], ["a</w>", 2]]),
    merges: [],
    bosToken: "<s>",
    eosToken: "</s>",
    padToken: "</s>",
    contextLength: 8,
  });
  assert.deepEqual(tokenizer.encode("a"), [0, 2, 1]);
  assert.throws(() => tokenizer.encode("a b"), /"b<\/w>" of "b" is not in the vocabulary/);
});

Deno.test("special tokens typed into a prompt stay whole, as in CLIP's seeded BPE cache", async () => {
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    // "a" = 320 and "cat" = 2368 (reference vector "a photo of a cat").
    assert.deepEqual(tokenizer.encode("a cat <|endoftext|> a"), [BOS, 320, 2368, EOS, 320, EOS]);
    assert.deepEqual(tokenizer.encode("<|StartOfText|>cat"), [BOS, BOS, 2368, EOS]);
  });
});

Deno.test("text cleanup is transformers' slow CLIPTokenizer's (BasicTokenizer, no ftfy): controls dropped, NFC, CJK ideographs split", async () => {
  // Ids from transformers 4.57.6's CLIPTokenizer (ftfy absent, as in a plain diffusers install)
  // on the real vocabulary. Control and format characters (\x1c, \x85, U+200B, U+00AD, U+FEFF,
  // U+FFFD, private use) are dropped, so the letters around them join; U+3000 is a space; NFC
  // composes "e\u0301"; every CJK ideograph is a piece of its own (spaces put around it), while
  // hiragana is not; a final capital sigma lower-cases to "ς".
  const cases: [string, number[]][] = [
    ["a\x1ccat\x85a\u3000cat", [546, 4236, 2368]],
    ["a cat\x1cdog", [320, 1481, 1929]],
    ["zero\u200bwidth", [14867, 23571]],
    ["soft\u00adhyphen", [1571, 7804, 745, 576]],
    ["cafe\u0301", [15304]],
    ["caf\u00e9", [15304]],
    ["日本の猫", [37156, 19277, 361, 4813, 362, 163, 234, 360]],
    ["日本語", [37156, 19277, 361, 34002, 508]],
    ["a日b", [320, 37156, 321]],
    ["ΟΔΟΣ x", [138, 123, 138, 112, 138, 123, 139, 480, 343]],
    ["bom\ufeffin", [3012, 530]],
    ["x\ufffdy", [11443]],
    ["priv\ue000ate", [4439]],
  ];
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    for (const [text, ids] of cases) {
      assert.deepEqual(tokenizer.encode(text), [BOS, ...ids, EOS], JSON.stringify(text));
    }
    // The joined word keeps its original span, dropped characters included.
    const [zero] = tokenizer.wordPositions("zero\u200bwidth cat");
    assert.deepEqual([zero.positions, zero.start], [[1, 2], 0]);
    assert.deepEqual(tokenizer.wordPositions("日本 cat").map((w) => w.positions), [[1, 2, 3], [4]]);
  });
});

Deno.test("a model folder whose tokenizer is only tokenizer.json loads and tokenizes the same", async () => {
  const { loadModel } = await import("../src/query/load-model.ts");
  const source = "fixtures/models/sd-vpred";
  const dir = await Deno.makeTempDir({ prefix: "infodiff-tokenizer-json-model-" });
  await Deno.remove(dir);
  await new Deno.Command("cp", { args: ["-r", source, dir] }).output();
  const vocab = JSON.parse(await Deno.readTextFile(join(dir, "tokenizer/vocab.json")));
  const merges = (await Deno.readTextFile(join(dir, "tokenizer/merges.txt")))
    .split("\n").filter((line) => line && !line.startsWith("#version"));
  await Deno.writeTextFile(
    join(dir, "tokenizer/tokenizer.json"),
    // the BPE model only: the special tokens stay in tokenizer_config.json, as in this export
    JSON.stringify({ model: { type: "BPE", vocab, merges, end_of_word_suffix: "</w>" } }),
  );
  await Deno.remove(join(dir, "tokenizer/vocab.json"));
  await Deno.remove(join(dir, "tokenizer/merges.txt"));
  const [original, converted] = await Promise.all([
    loadModel(source, { device: "cpu" }),
    loadModel(dir, { device: "cpu" }),
  ]);
  try {
    const prompt = "a red circle on the left of a blue square";
    const image = new Float32Array(original.shape[0] * original.shape[1] * original.shape[2]).fill(
      0.2,
    );
    const total = (m: typeof original) => m.info(image).given(prompt).samples(6).seed(3).total();
    assert.equal((await total(converted)).nats, (await total(original)).nats);
  } finally {
    await Promise.all([original.dispose(), converted.dispose()]);
  }
});

Deno.test("promptTokens of a 100-word prompt: 75 of 100 tokens kept, the 25 words past 77 named", async () => {
  // one token per word (reference vector "a photo of a cat"), so words 75…99 are cut whole
  const words = ["a", "photo", "of", "a", "cat"];
  const prompt = Array.from({ length: 100 }, (_, i) => words[i % 5]).join(" ");
  await withFolder(await clipFolder(SD1_SPECIALS), async (dir) => {
    const read = (await loadTokenizer(dir)).promptTokens(prompt);
    assert.deepEqual(
      { ...read, cutWords: undefined },
      { encoder: "text_encoder", contextLength: 77, kept: 75, total: 100, cutWords: undefined },
    );
    assert.deepEqual(
      read.cutWords,
      Array.from(
        { length: 25 },
        (_, k) => ({ word: words[(75 + k) % 5], index: 75 + k, partly: false }),
      ),
    );
    // 75 tokens fit exactly: nothing is cut
    const exact = Array.from({ length: 75 }, (_, i) => words[i % 5]).join(" ");
    const fits = (await loadTokenizer(dir)).promptTokens(exact, "clip-l");
    assert.deepEqual(fits, {
      encoder: "clip-l",
      contextLength: 77,
      kept: 75,
      total: 75,
      cutWords: [],
    });
  });
});

Deno.test("promptTokens: a word whose tokens straddle the context end is cut partly", async () => {
  const hf = new HfTokenizer(hfClipTokenizerJson(VOCAB, await sharedMerges()), {
    bos_token: "<|startoftext|>",
    eos_token: "<|endoftext|>",
  });
  const long = "antidisestablishmentarianism";
  const pieces = hf.encode(long).ids.length - 2; // Hugging Face's count, BOS/EOS off
  assert.ok(pieces > 1, `${long} is ${pieces} tokens`);
  // 74 one-token words, then the long word (its first token is the 75th and last that fits)
  const prompt = `${Array(74).fill("cat").join(" ")} ${long} dog`;
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    const read = (await loadTokenizer(dir)).promptTokens(prompt);
    assert.equal(read.total, hf.encode(prompt).ids.length - 2);
    assert.equal(read.kept, 75);
    assert.deepEqual(read.cutWords, [
      { word: long, index: 74, partly: true },
      { word: "dog", index: 75, partly: false },
    ]);
  });
});

Deno.test("special tokens typed into a prompt are a PromptError naming them; SD 2.x's '!' pad is punctuation", async () => {
  await withFolder(await clipFolder(SD2_SPECIALS), async (dir) => {
    const tokenizer = await loadTokenizer(dir);
    assert.deepEqual(tokenizer.specialTokens, ["<|startoftext|>", "<|endoftext|>"]);
    for (
      const [prompt, token] of [
        ["a cat <|endoftext|> a", "<|endoftext|>"],
        ["<|StartOfText|>cat", "<|StartOfText|>"],
      ]
    ) {
      for (
        const call of [
          () => tokenizer.promptTokens(prompt),
          () => tokenizer.refuseSpecialTokens(prompt),
        ]
      ) {
        assert.throws(
          call,
          (e: unknown) =>
            e instanceof PromptError && e.message.includes(`holds "${token}"`) &&
            e.message.includes("special token"),
        );
      }
    }
    // "!" is SD 2.x's pad token but no word: a prompt may end in "!!" (two added tokens, id 0)
    assert.equal(tokenizer.promptTokens("hello world!!").total, 4);
  });
});

Deno.test("added tokens marked special and additional_special_tokens are refused too; plain added tokens are not", async () => {
  const config = {
    model_max_length: 77,
    additional_special_tokens: ["<|im_sep|>"],
    added_tokens_decoder: {
      "49406": { content: "<|startoftext|>", special: true },
      "49407": { content: "<|endoftext|>", special: true },
      "49408": { content: "<|mask|>", special: true },
      "49409": { content: "<cat-toy>", special: false }, // a textual-inversion word: typed on purpose
    },
  };
  await withFolder(await clipFolder(SD1_SPECIALS, config), async (dir) => {
    await Deno.writeTextFile(
      join(dir, "special_tokens_map.json"),
      JSON.stringify({ ...SD1_SPECIALS, additional_special_tokens: [{ content: "<|extra|>" }] }),
    );
    const tokenizer = await loadTokenizer(dir);
    for (const token of ["<|im_sep|>", "<|mask|>", "<|extra|>"]) {
      assert.throws(() => tokenizer.promptTokens(`a ${token} cat`), PromptError, token);
    }
    assert.equal(tokenizer.promptTokens("a <cat-toy> cat").kept > 0, true);
  });
});
