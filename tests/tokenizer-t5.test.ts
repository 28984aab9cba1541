/**
 * The T5 tokenizer's contract beyond parity (tests/tokenizer-parity.test.ts pins its ids to
 * Python's): bad folders and arguments are typed errors, special tokens typed into a prompt are
 * refused, the pad and EOS come from the folder's files, word positions fail loudly where the
 * pieces do not spell the prompt, and a word past CLIP's context but within T5's is reported per
 * encoder and seen.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { InvalidArgumentError, ModelLoadError, PromptError } from "../src/errors.ts";
import { unseenWords } from "../src/estimators/truncation.ts";
import type { Denoiser } from "../src/models/denoiser.ts";
import { loadT5Tokenizer, T5Tokenizer } from "../src/models/sd/t5-tokenizer.ts";
import { loadTokenizer } from "../src/models/sd/tokenizer.ts";
import { promptWords } from "../src/text/prompt.ts";

const T5_TINY = fileURLToPath(new URL("../fixtures/tokenizers/t5-tiny/", import.meta.url));
const CLIP = fileURLToPath(new URL("../fixtures/clip/", import.meta.url));
const TOKENIZER_JSON = JSON.parse(await Deno.readTextFile(join(T5_TINY, "tokenizer.json")));

/** A copy of t5-tiny in a temporary folder, changed by `edit`, removed after `body`. */
async function withCopy(
  edit: (dir: string) => Promise<void>,
  body: (dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-t5-" });
  try {
    for await (const entry of Deno.readDir(T5_TINY)) {
      await Deno.copyFile(join(T5_TINY, entry.name), join(dir, entry.name));
    }
    await edit(dir);
    await body(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("a T5 folder without tokenizer.json is a ModelLoadError naming the file; a missing folder too", async () => {
  await withCopy((dir) => Deno.remove(join(dir, "tokenizer.json")), async (dir) => {
    await assert.rejects(
      loadT5Tokenizer(dir, 256),
      (e: unknown) =>
        e instanceof ModelLoadError &&
        e.message.includes(`missing ${join(dir, "tokenizer.json")}`) &&
        e.message.includes("SentencePiece Unigram") && !e.message.includes("spiece.model"),
    );
    // With only SentencePiece's own model, the message says how to make tokenizer.json.
    await Deno.writeTextFile(join(dir, "spiece.model"), "");
    await assert.rejects(
      loadT5Tokenizer(dir, 256),
      (e: unknown) => e instanceof ModelLoadError && e.message.includes("T5TokenizerFast"),
    );
  });
  await assert.rejects(
    loadT5Tokenizer(join(T5_TINY, "absent"), 256),
    (e: unknown) => e instanceof ModelLoadError && e.message.includes("does not exist"),
  );
});

Deno.test("a tokenizer.json that is not T5's (BPE model, no </s> template, not JSON) is a ModelLoadError saying what was expected", async () => {
  const cases: [string, (json: Record<string, unknown>) => unknown, string][] = [
    ["BPE", (j) => ({ ...j, model: { type: "BPE", vocab: {}, merges: [] } }), "Unigram"],
    ["no post-processor", (j) => ({ ...j, post_processor: null }), "TemplateProcessing"],
    [
      "BOS template",
      (j) => ({
        ...j,
        post_processor: {
          ...(j.post_processor as object),
          single: [
            { SpecialToken: { id: "</s>", type_id: 0 } },
            { Sequence: { id: "A", type_id: 0 } },
          ],
        },
      }),
      "appends </s> (id 1)",
    ],
  ];
  for (const [name, change, expected] of cases) {
    await withCopy(
      (dir) =>
        Deno.writeTextFile(join(dir, "tokenizer.json"), JSON.stringify(change(TOKENIZER_JSON))),
      async (dir) => {
        await assert.rejects(
          loadT5Tokenizer(dir, 256),
          (e: unknown) => e instanceof ModelLoadError && e.message.includes(expected),
          name,
        );
      },
    );
  }
  await withCopy((dir) => Deno.writeTextFile(join(dir, "tokenizer.json"), "{"), async (dir) => {
    await assert.rejects(loadT5Tokenizer(dir, 256), ModelLoadError, "not valid JSON");
  });
});

Deno.test("max length must be an integer ≥ 2: an InvalidArgumentError, not a folder error", async () => {
  for (const maxLength of [1, 0, 2.5, Number.NaN]) {
    await assert.rejects(loadT5Tokenizer(T5_TINY, maxLength), InvalidArgumentError);
    assert.throws(() => new T5Tokenizer(TOKENIZER_JSON, { maxLength }), InvalidArgumentError);
  }
  // 2 holds one content token and </s>
  const tokenizer = await loadT5Tokenizer(T5_TINY, 2);
  const { ids, dropped } = tokenizer.tokenize("a red cat");
  assert.equal(ids.length, 2);
  assert.equal(ids[1], tokenizer.eosId);
  const content = (await loadT5Tokenizer(T5_TINY, 256)).tokenize("a red cat").ids.length - 1;
  assert.ok(content >= 3);
  assert.equal(dropped, content - 1);
});

Deno.test("</s>, <pad>, <unk> and every <extra_id_N> typed into a prompt are a PromptError naming it; other text is not", async () => {
  const tokenizer = await loadT5Tokenizer(T5_TINY, 256);
  assert.equal(tokenizer.specialTokens.filter((t) => /^<extra_id_\d+>$/.test(t)).length, 16);
  for (const token of ["</s>", "<pad>", "<unk>", "<extra_id_0>", "<extra_id_15>"]) {
    for (
      const call of [
        () => tokenizer.promptTokens(`a cat ${token}`, "text_encoder_3"),
        () => tokenizer.refuseSpecialTokens(`a${token}cat`),
      ]
    ) {
      assert.throws(
        call,
        (e: unknown) =>
          e instanceof PromptError && e.message.includes(`holds "${token}"`) &&
          e.message.includes("special token") && e.message.includes("… and"),
        token,
      );
    }
  }
  // T5 matches its added tokens exactly: "<PAD>", CLIP's "<|endoftext|>" and "<extra_id>" are text.
  for (const text of ["a <PAD> cat", "<|endoftext|>", "<extra_id> cat", "</S>"]) {
    tokenizer.refuseSpecialTokens(text);
    assert.equal(tokenizer.promptTokens(text, "text_encoder_3").cutWords.length, 0);
  }
});

Deno.test("the pad and end tokens are the folder's (special_tokens_map.json), ids from tokenizer.json", async () => {
  const tokenizer = await loadT5Tokenizer(T5_TINY, 8);
  assert.deepEqual([tokenizer.padId, tokenizer.eosId, tokenizer.kind], [0, 1, "t5"]);
  await withCopy(async (dir) => {
    const map = JSON.parse(await Deno.readTextFile(join(dir, "special_tokens_map.json")));
    await Deno.writeTextFile(
      join(dir, "special_tokens_map.json"),
      JSON.stringify({ ...map, pad_token: { content: "<unk>" } }),
    );
  }, async (dir) => {
    const padded = await loadT5Tokenizer(dir, 8);
    assert.equal(padded.padId, 2);
    const ids = [...padded.inputIds("a")];
    assert.deepEqual(ids.slice(ids.indexOf(1) + 1), new Array(8 - ids.indexOf(1) - 1).fill(2));
  });
  await withCopy(async (dir) => {
    const map = JSON.parse(await Deno.readTextFile(join(dir, "special_tokens_map.json")));
    await Deno.writeTextFile(
      join(dir, "special_tokens_map.json"),
      JSON.stringify({ ...map, eos_token: "<nope>" }),
    );
  }, async (dir) => {
    await assert.rejects(loadT5Tokenizer(dir, 8), ModelLoadError, 'eos_token "<nope>"');
  });
});

Deno.test("word positions fail loudly where the pieces do not spell the prompt grapheme by grapheme", () => {
  // A normalizer that joins two graphemes into one character: "ab" becomes "x" only as a whole.
  const json = {
    ...TOKENIZER_JSON,
    normalizer: { type: "Replace", pattern: { String: "ab" }, content: "x" },
  };
  const tokenizer = new T5Tokenizer(json, { maxLength: 16 });
  assert.ok(tokenizer.tokenize("ab cat").ids.length > 1); // the ids stay available
  assert.throws(
    () => tokenizer.wordPositions("ab cat"),
    (e: unknown) =>
      e instanceof PromptError && e.message.includes('"ab cat"') && e.message.includes("guess"),
  );
  // the same tokenizer places a prompt its normalizer leaves alone
  assert.deepEqual(
    tokenizer.wordPositions("a cat").map((w) => w.word),
    ["a", "cat"],
  );
});

Deno.test("a word past CLIP's 77 tokens but within T5's 256 is cut for text_encoder only, and seen", async () => {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-t5-clip-" });
  try {
    for (const file of ["vocab.json", "merges.txt"]) {
      await Deno.copyFile(join(CLIP, file), join(dir, file));
    }
    const clip = await loadTokenizer(dir);
    const t5 = await loadT5Tokenizer(T5_TINY, 256);
    // 80 one-CLIP-token words: CLIP keeps 75
    const prompt = Array.from({ length: 80 }, (_, i) => (i % 2 ? "cat" : "dog")).join(" ");
    const reads = [
      clip.promptTokens(prompt, "text_encoder"),
      t5.promptTokens(prompt, "text_encoder_3"),
    ];
    assert.deepEqual(reads[0].cutWords.map((w) => w.index), [75, 76, 77, 78, 79]);
    assert.deepEqual(reads[1].cutWords, []);
    assert.equal(reads[1].total, t5.tokenize(prompt).ids.length - 1);
    const model = { name: "two encoders", encoderTokens: () => reads } as unknown as Denoiser;
    assert.deepEqual([...unseenWords(model, prompt)], []);
    // every word has T5 positions; the last five have none in CLIP's
    const t5Words = t5.wordPositions(prompt), clipWords = clip.wordPositions(prompt);
    assert.equal(t5Words.length, promptWords(prompt).length);
    assert.ok(t5Words.every((w) => w.positions.length > 0));
    assert.deepEqual(clipWords.slice(75).map((w) => w.positions), [[], [], [], [], []]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
