// Prompts longer than a text encoder's context: every result records what was cut (provenance)
// and warns once; a contrast whose two prompts are cut differently is refused unless
// allowTruncation is set; special tokens typed into a prompt are refused. The token counts are
// the real CLIP tokenizer's (fixtures/clip: "a", "red", "circle", "blue", "_" are one token each,
// reference vectors and vocab.json), on the exact mixture oracle for speed, and shapes-tiny's own
// tokenizer (context 20) end to end through the ONNX backend.
import assert from "node:assert/strict";
import { join } from "node:path";
import { PromptError } from "../src/errors.ts";
import { type Denoiser, withMembers } from "../src/models/denoiser.ts";
import { mixtureDenoiser } from "../src/models/mixture.ts";
import { type ClipTokenizer, loadTokenizer } from "../src/models/sd/tokenizer.ts";
import { createModel } from "../src/query/model.ts";
import { loadModel } from "../src/query/load-model.ts";
import { setWarningHandler } from "../src/warnings.ts";
import { checkTruncation, unseenWords } from "../src/estimators/truncation.ts";
import type { Provenance } from "../src/estimators/provenance.ts";

/** A temporary tokenizer folder with the real CLIP vocabulary and merges at `context` tokens. */
async function clipTokenizer(context = 77): Promise<ClipTokenizer> {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-truncation-" });
  try {
    for (const file of ["vocab.json", "merges.txt"]) {
      await Deno.copyFile(join("fixtures/clip", file), join(dir, file));
    }
    await Deno.writeTextFile(
      join(dir, "tokenizer_config.json"),
      JSON.stringify({ model_max_length: context }),
    );
    return await loadTokenizer(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const CLIP = await clipTokenizer();

/** The exact mixture oracle, reading prompts through `encoders` (name → tokenizer). */
function oracle(encoders: Record<string, ClipTokenizer> = { text_encoder: CLIP }) {
  const base = mixtureDenoiser({
    shape: [1, 1, 2],
    components: [
      { words: ["red", "circle"], mean: [1, 0], variance: 0.2 },
      { words: ["blue", "circle"], mean: [0, 1], variance: 0.2 },
    ],
  });
  const encoderTokens = (prompt: string) =>
    Object.entries(encoders).map(([name, t]) => t.promptTokens(prompt, name));
  return createModel(withMembers(base as Denoiser, { encoderTokens }));
}

const IMAGE = new Float32Array([1, 0]);
/** 3 + 73 one-token words = 76 tokens, one past CLIP's 75; without "red" it fits. */
const LONG = `a red circle ${Array(73).fill("a").join(" ")}`;

/** Runs the body with warnings collected. */
async function warnings<T>(body: () => Promise<T>): Promise<{ value: T; seen: string[] }> {
  const seen: string[] = [];
  const previous = setWarningHandler((m) => seen.push(m));
  try {
    return { value: await body(), seen };
  } finally {
    setWarningHandler(previous);
  }
}

Deno.test("about(): the full prompt past 77 tokens but the context within it is refused, naming the cut word and the option", async () => {
  const query = oracle().info(IMAGE).given(LONG).samples(4);
  const { seen } = await warnings(async () => {
    await assert.rejects(
      () => query.about("red"),
      (e: unknown) =>
        e instanceof PromptError &&
        e.message.includes("text_encoder (context 77 tokens) cuts the two prompts") &&
        e.message.includes("loses 1 word(s) that lie past its context (a)") &&
        e.message.includes("fits") && e.message.includes("allowTruncation: true"),
    );
  });
  assert.deepEqual(seen, [], "refused before anything runs or warns");
  assert.throws(() => query.plan("about", "red"), PromptError, "the dry run refuses alike");
  assert.throws(() => query.plan("perToken"), PromptError);
  await assert.rejects(() => query.pid("red", "circle"), PromptError);
});

Deno.test("about() with allowTruncation runs, warns once, and records the option and the cut prompt", async () => {
  const query = oracle().info(IMAGE).given(LONG).samples(4).allowTruncation();
  const { value: about, seen } = await warnings(() => query.about("red"));
  assert.ok(Number.isFinite(about.nats));
  assert.equal(seen.length, 1, seen.join("\n"));
  assert.match(seen[0], /text_encoder sees 75 of the 76 tokens/);
  assert.match(seen[0], /allowTruncation: 1 contrast\(s\) compare prompts cut differently/);
  const p = about.provenance!;
  assert.equal(p.settings.allowTruncation, true);
  assert.deepEqual(p.truncation, [{
    prompt: LONG,
    encoder: "text_encoder",
    contextLength: 77,
    kept: 75,
    total: 76,
    cutWords: [{ word: "a", index: 75, partly: false }],
  }]);
  assert.deepEqual(query.plan("about", "red").truncation, p.truncation);
  // the same query without the option records no setting
  const fits = await oracle().info(IMAGE).given("a red circle").samples(4).about("red");
  assert.equal(fits.provenance?.settings.allowTruncation, undefined);
  assert.deepEqual(fits.provenance?.truncation, []);
});

Deno.test("total() and nll() on a long prompt warn once each and record the cut prompt in provenance", async () => {
  const query = oracle().info(IMAGE).given(LONG).samples(4);
  for (const terminal of ["total", "nll", "perPixel"] as const) {
    const { value, seen } = await warnings<{ provenance?: Provenance }>(() => query[terminal]());
    assert.equal(seen.length, 1, `${terminal}: ${seen.join("\n")}`);
    assert.match(
      seen[0],
      /sees 75 of the 76 tokens .* loses 1 word\(s\) that lie past its context \(a\)/,
    );
    assert.doesNotMatch(seen[0], /allowTruncation/);
    const cut = value.provenance!.truncation!;
    assert.deepEqual(cut.map((t) => [t.prompt, t.kept, t.total]), [[LONG, 75, 76]], terminal);
  }
});

Deno.test("a one-token placeholder cuts both prompts alike: about() runs without the option", async () => {
  // "_" is one token (vocab "_</w>" = 318), so the context loses the same last "a" as the prompt
  const query = oracle().info(IMAGE).given(LONG).samples(4);
  const { value, seen } = await warnings(() => query.about("red", { placeholder: "_" }));
  assert.equal(seen.length, 1);
  assert.deepEqual(value.provenance?.truncation?.map((t) => t.cutWords.length), [1, 1]);
  assert.equal(value.provenance?.settings.allowTruncation, undefined);
});

Deno.test("perToken() on a long prompt is refused; allowed, the words no encoder sees have no estimate", async () => {
  const longer = `${LONG} circle`; // 77 tokens: the last "a" and "circle" are past the context
  const query = oracle().info(IMAGE).given(longer).samples(4);
  await assert.rejects(() => query.perToken(), /cuts the two prompts of a contrast differently/);
  const { value, seen } = await warnings(() => query.allowTruncation().perToken());
  assert.equal(seen.length, 1, seen.join("\n"));
  assert.match(seen[0], /2 word\(s\) that lie past its context \(a, circle\)/);
  const cut = value.tokens.filter((t) => t.truncated).map((t) => t.index);
  assert.deepEqual(cut, [75, 76]);
  assert.ok(value.tokens.slice(0, 75).every((t) => Number.isFinite(t.estimate.nats)));
});

Deno.test("several encoders: a word past CLIP's context but within a longer one's is seen; either encoder's uneven cut refuses", async () => {
  const t5Like = await clipTokenizer(256); // a second encoder with a longer context
  const model = oracle({ text_encoder: CLIP, text_encoder_2: t5Like });
  const longer = `${LONG} blue`;
  assert.deepEqual([...unseenWords(model, longer)], [], "text_encoder_2 sees every word");
  assert.deepEqual([...unseenWords(oracle(), longer)], [75, 76]);
  const plan = { prompts: [longer, "red circle"], contrasts: [{ with: 0, without: 1 }] };
  assert.deepEqual(
    checkTruncation(model, plan, false).uneven,
    [],
    "the poorer prompt shares no cut word",
  );
  const about = {
    prompts: [longer, longer.replace("red ", "")],
    contrasts: [{ with: 0, without: 1 }],
  };
  assert.throws(() => checkTruncation(model, about, false), /text_encoder \(context 77/);
  const allowed = checkTruncation(model, about, true);
  assert.deepEqual(allowed.uneven.map((u) => u.encoder), ["text_encoder"]);
  assert.deepEqual(allowed.truncation.map((t) => [t.encoder, t.kept, t.total]), [
    ["text_encoder", 75, 77],
    ["text_encoder", 75, 76],
  ]);
});

Deno.test("a model without a context limit records no truncation and never refuses", async () => {
  const base = mixtureDenoiser({
    shape: [1, 1, 2],
    components: [{ words: ["red"], mean: [1, 0], variance: 0.2 }],
  });
  const huge = `a red ${Array(300).fill("a").join(" ")}`;
  const { value, seen } = await warnings(() =>
    createModel(base).info(IMAGE).given(huge).samples(4).about("red")
  );
  assert.deepEqual(seen, []);
  assert.deepEqual(value.provenance?.truncation, []);
});

Deno.test("onnx shapes-tiny (context 20): refused, allowed with provenance, special tokens are PromptErrors", async () => {
  const model = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  try {
    // 19 one-token words of shapes-tiny's vocabulary; 18 fit, so without "red" the prompt fits
    const prompt = "a red circle left of a blue square and a small square and a small square " +
      "and a small";
    const image = new Float32Array(model.shape[0] * model.shape[1] * model.shape[2]).fill(0.1);
    const query = model.info(image).given(prompt).samples(2);
    await assert.rejects(() => query.about("red"), /text_encoder \(context 20 tokens\)/);
    const { value, seen } = await warnings(() => query.allowTruncation().about("red"));
    assert.equal(seen.length, 1);
    assert.deepEqual(value.provenance?.truncation, [{
      prompt,
      encoder: "text_encoder",
      contextLength: 20,
      kept: 18,
      total: 19,
      cutWords: [{ word: "small", index: 18, partly: false }],
    }]);
    for (const special of ["a red <|endoftext|> circle", "<|startoftext|> a red circle"]) {
      await assert.rejects(() => model.info(image).given(special).samples(2).total(), PromptError);
      await assert.rejects(async () => await model.encode(special), /special token/);
    }
  } finally {
    await model.dispose();
  }
});

Deno.test("cli about --allow-truncation: refused without it, run and recorded with it", async () => {
  const { main } = await import("../src/cli/main.ts");
  const prompt = "a red circle left of a blue square and a small square and a small square " +
    "and a small";
  const args = [
    "about",
    "--model",
    "fixtures/models/shapes-tiny",
    "--image",
    "fixtures/images/shapes-scene.png",
    "--prompt",
    prompt,
    "--word",
    "red",
    "--samples",
    "2",
    "--device",
    "cpu",
    "--json",
    "--quiet",
  ];
  await assert.rejects(() => main(args, () => {}), /context 20 tokens/);
  const lines: string[] = [];
  const { value: code } = await warnings(() =>
    main([...args, "--allow-truncation"], (l) => lines.push(l))
  );
  assert.equal(code, 0);
  const printed = JSON.parse(lines.join("\n"));
  assert.equal(printed.provenance.settings.allowTruncation, true);
  assert.deepEqual(printed.provenance.truncation.map((t: { kept: number }) => t.kept), [18]);
});
