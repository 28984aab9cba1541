/**
 * Tokenizer parity with Python: the ids that diffusers' pipelines feed their text encoders, made by
 * transformers (fixtures/tokenizers/vectors.json, tools/make_tokenizer_vectors.py) for 303 prompts:
 * slow CLIPTokenizer on the real CLIP vocabulary padded with `<|endoftext|>` (SD 1.x, the first
 * tokenizer of SDXL/SD3/FLUX) and with `!` (SD 2.x, SDXL's and SD3's tokenizer_2), and
 * T5TokenizerFast on a T5-format tokenizer.json at max lengths 256 and 77. Every id must be equal;
 * word positions and the words cut off must be the ones the fast tokenizers' offsets give.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PromptError } from "../src/errors.ts";
import type { PromptTokenizer } from "../src/models/sd/prompt-tokenizer.ts";
import { loadT5Tokenizer } from "../src/models/sd/t5-tokenizer.ts";
import { loadTokenizer } from "../src/models/sd/tokenizer.ts";
import { promptWords } from "../src/text/prompt.ts";

const FIXTURES = fileURLToPath(new URL("../fixtures/", import.meta.url));

interface Vector {
  text: string;
  tags: string[];
  clip_eot: number[];
  clip_bang: number[];
  clip_untruncated: number;
  clip_offsets: [number, number][];
  clip_fast_ids_equal: boolean;
  t5_256: number[];
  t5_77: number[];
  t5_untruncated: number;
  t5_tokens: string[];
  t5_offsets: [number, number][];
  t5_word_ids: (number | null)[];
}

const FILE = JSON.parse(
  await Deno.readTextFile(join(FIXTURES, "tokenizers", "vectors.json")),
) as { clip: { bos_id: number; eos_id: number }; t5: { eos_id: number }; vectors: Vector[] };
const VECTORS = FILE.vectors;
const CLIP_SPECIALS = ["<|startoftext|>", "<|endoftext|>"];
const T5_SPECIAL = /<\/s>|<pad>|<unk>|<extra_id_\d+>/;

/** SD 1.x's files (pad = EOS) and SD 2.x's (pad "!"), as the vectors' Python folders were. */
const SPECIALS = {
  eot: {
    bos_token: "<|startoftext|>",
    eos_token: "<|endoftext|>",
    pad_token: "<|endoftext|>",
    unk_token: "<|endoftext|>",
  },
  bang: {
    bos_token: "<|startoftext|>",
    eos_token: "<|endoftext|>",
    pad_token: "!",
    unk_token: "<|endoftext|>",
  },
};

async function clipTokenizer(specials: object): Promise<PromptTokenizer> {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-parity-" });
  try {
    for (const file of ["vocab.json", "merges.txt"]) {
      await Deno.copyFile(join(FIXTURES, "clip", file), join(dir, file));
    }
    await Deno.writeTextFile(join(dir, "special_tokens_map.json"), JSON.stringify(specials));
    await Deno.writeTextFile(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ model_max_length: 77 }),
    );
    return await loadTokenizer(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const t5 = (maxLength: number) =>
  loadT5Tokenizer(join(FIXTURES, "tokenizers", "t5-tiny"), maxLength);

/** Python str indices (code points) → UTF-16 offsets of the same text. */
function utf16Offsets(text: string): number[] {
  const offsets = [0];
  for (const char of text) offsets.push(offsets[offsets.length - 1] + char.length);
  return offsets;
}

/**
 * The positions each prompt word has by the Python tokenizer's own offsets: the content tokens
 * (markers excluded, within the context) whose characters overlap the word; a T5 piece that is
 * only "▁" goes with the piece after it when both are of the same pre-tokenizer word (word ids).
 */
function expectedPositions(
  text: string,
  offsets: readonly [number, number][],
  first: number,
  kept: number,
  alone?: (i: number) => boolean,
): number[][] {
  const at = utf16Offsets(text);
  const spans = offsets.map(([s, e]) => [at[s], at[e]]);
  return promptWords(text).map((w) => {
    const within = (i: number): boolean => spans[i][0] < w.end && spans[i][1] > w.start;
    const positions: number[] = [];
    for (let i = 0; i < kept; i++) {
      if (alone?.(i) ? within(i + 1) : within(i)) positions.push(i + first);
    }
    return positions;
  });
}

/** The words cut off by the Python offsets: overlapping a dropped content token. */
function expectedCutWords(
  text: string,
  offsets: readonly [number, number][],
  kept: number,
  total: number,
  alone: (i: number) => boolean,
) {
  const all = expectedPositions(text, offsets.slice(0, total), 0, total, alone);
  return promptWords(text).flatMap((w, index) => {
    const dropped = all[index].some((p) => p >= kept);
    return dropped ? [{ word: w.word, index, partly: all[index].some((p) => p < kept) }] : [];
  });
}

Deno.test("the fixture covers what the parity claims: 303 prompts, T5 and CLIP truncation, typed special tokens", () => {
  assert.equal(VECTORS.length, 303);
  assert.ok(VECTORS.some((v) => v.clip_untruncated > 77));
  assert.ok(VECTORS.some((v) => v.t5_untruncated > 256));
  assert.ok(VECTORS.some((v) => v.t5_untruncated > 77 && v.t5_untruncated <= 256));
  assert.ok(VECTORS.some((v) => v.text.includes("!")));
  assert.ok(VECTORS.some((v) => v.tags.includes("special")));
});

for (const [name, key] of [["<|endoftext|>", "eot"], ["! (id 0)", "bang"]] as const) {
  Deno.test(`CLIP padded with ${name}: every prompt's input ids equal transformers' slow CLIPTokenizer`, async () => {
    const tokenizer = await clipTokenizer(SPECIALS[key]);
    for (const v of VECTORS) {
      const expected = key === "eot" ? v.clip_eot : v.clip_bang;
      assert.deepEqual([...tokenizer.inputIds(v.text)], expected, JSON.stringify(v.text));
      // The untruncated counts are the <|endoftext|> tokenizer's ("!?" is one token there).
      if (key === "bang") continue;
      const { ids, dropped } = tokenizer.tokenize(v.text);
      assert.equal(ids.length + dropped, v.clip_untruncated, JSON.stringify(v.text));
    }
  });
}

Deno.test("CLIP: word positions, kept/total and the cut words are the fast tokenizer's offsets'", async () => {
  const tokenizer = await clipTokenizer(SPECIALS.eot);
  let checked = 0;
  for (const v of VECTORS) {
    if (CLIP_SPECIALS.some((t) => v.text.includes(t))) {
      assert.throws(() => tokenizer.promptTokens(v.text, "text_encoder"), PromptError, v.text);
      continue;
    }
    if (!v.clip_fast_ids_equal) continue;
    const content = v.clip_offsets.slice(1, -1); // BOS and EOS off
    const kept = Math.min(content.length, 75);
    const words = tokenizer.wordPositions(v.text).map((w) => w.positions);
    assert.deepEqual(words, expectedPositions(v.text, content, 1, kept), JSON.stringify(v.text));
    const read = tokenizer.promptTokens(v.text, "text_encoder");
    assert.equal(read.kept, kept);
    assert.equal(read.total, v.clip_untruncated - 2);
    const cut = expectedCutWords(v.text, content, kept, content.length, () => false);
    assert.deepEqual(read.cutWords, cut, JSON.stringify(v.text));
    checked++;
  }
  assert.ok(checked > 250, `${checked} prompts checked`);
});

for (const maxLength of [256, 77] as const) {
  Deno.test(`T5 at max length ${maxLength}: every prompt's input ids equal T5TokenizerFast's, </s> appended, pad 0`, async () => {
    const tokenizer = await t5(maxLength);
    assert.equal(tokenizer.padId, 0);
    for (const v of VECTORS) {
      const expected = maxLength === 256 ? v.t5_256 : v.t5_77;
      assert.deepEqual([...tokenizer.inputIds(v.text)], expected, JSON.stringify(v.text));
      const { ids, dropped } = tokenizer.tokenize(v.text);
      assert.equal(ids[ids.length - 1], FILE.t5.eos_id);
      assert.equal(ids.length + dropped, v.t5_untruncated, JSON.stringify(v.text));
    }
  });

  Deno.test(`T5 at max length ${maxLength}: word positions, kept/total and the cut words follow the Rust offsets`, async () => {
    const tokenizer = await t5(maxLength);
    let checked = 0, cut = 0;
    for (const v of VECTORS) {
      if (T5_SPECIAL.test(v.text)) {
        assert.throws(() => tokenizer.promptTokens(v.text, "text_encoder_3"), PromptError, v.text);
        continue;
      }
      const total = v.t5_untruncated - 1; // </s> off
      const kept = Math.min(total, maxLength - 1);
      const alone = (i: number) =>
        v.t5_tokens[i] === "\u2581" && i + 1 < total && v.t5_word_ids[i] === v.t5_word_ids[i + 1];
      const offsets = v.t5_offsets.slice(0, total);
      const words = tokenizer.wordPositions(v.text).map((w) => w.positions);
      assert.deepEqual(
        words,
        expectedPositions(v.text, offsets, 0, kept, alone),
        JSON.stringify(v.text),
      );
      const read = tokenizer.promptTokens(v.text, "text_encoder_3");
      assert.deepEqual([read.encoder, read.contextLength, read.kept, read.total], [
        "text_encoder_3",
        maxLength,
        kept,
        total,
      ]);
      assert.deepEqual(read.cutWords, expectedCutWords(v.text, offsets, kept, total, alone));
      checked++;
      if (read.cutWords.length > 0) cut++;
    }
    assert.ok(checked > 290 && cut > 0, `${checked} prompts checked, ${cut} cut`);
  });
}
