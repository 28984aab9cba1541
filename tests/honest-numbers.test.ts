// Numbers that say what they are: every seed its own stream, no silent rounding, bounded memory,
// no sampling outside the trained range unless asked, and numbers that do not depend on how
// model calls are cut (batchSize), also on scalar-timestep exports.
import assert from "node:assert/strict";
import { InvalidArgumentError } from "../src/errors.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { setWarningHandler } from "../src/warnings.ts";
import { Random } from "../src/numerics/random.ts";
import { mutualInformation } from "../src/estimators/mutual-information.ts";
import type { Estimate } from "../src/estimators/estimate.ts";

const oracle = exampleOracle();
const image = oracle.sample(EXAMPLE_PROMPT, { seed: 1 });
const query = oracle.info(image).given(EXAMPLE_PROMPT).samples(16);

Deno.test("seeds: every integer seed has its own draws; non-integers are refused", async () => {
  const nats = async (seed: number) => (await query.seed(seed).total()).nats;
  const zero = await nats(0);
  for (const seed of [-1, 2 ** 32, 2 ** 32 + 1, 2 ** 40, -(2 ** 33)]) {
    assert.notEqual(await nats(seed), zero, `seed ${seed}`);
  }
  assert.equal(await nats(2 ** 32 + 1), await nats(2 ** 32 + 1), "same seed, same numbers");
  for (const seed of [0.5, -0.1, NaN, Infinity, 2 ** 60]) {
    assert.throws(() => query.seed(seed), InvalidArgumentError, `seed ${seed}`);
    assert.throws(() => new Random(seed), InvalidArgumentError);
  }
  // seeds below 2^32 keep the streams they always had (the README's numbers were made with them)
  assert.equal(new Random(7).nextUint32(), 1004282400);
});

Deno.test("samples and batch sizes that cannot be allocated are refused before any work", async () => {
  assert.throws(() => query.samples(1e12), /at most 10000000/);
  assert.throws(() => query.samples(2e9), InvalidArgumentError);
  await assert.rejects(() => query.batchSize(2 ** 28).total(), /GiB per call/);
});

Deno.test("log-SNR sampling outside the trained range is refused unless allowed, then warned once", async () => {
  const model = await loadModel("fixtures/models/sd-scalart-onnxdata", { device: "cpu" });
  try {
    const data = new Float32Array(model.shape[0] * model.shape[1] * model.shape[2]).fill(0.1);
    const q = model.info(data).given("a red circle").samples(4);
    // this fixture's trained range is [−10.1, 9.2]: clip 6 reaches [−11, 13], clip 4 [−7, 9]
    assert.deepEqual(
      [model.logSnrRange.min.toFixed(1), model.logSnrRange.max.toFixed(1)],
      ["-10.1", "9.2"],
    );
    assert.throws(() => q.logSnr({ loc: 1, scale: 2, clip: 6 }), /outside .* trained range/);
    assert.doesNotThrow(() => q.logSnr({ loc: 1, scale: 2, clip: 4 }));
    const seen: string[] = [];
    const previous = setWarningHandler((m) => seen.push(m));
    try {
      const allowed = q.logSnr({ loc: 1, scale: 2, clip: 6 }, { allowOutsideTrainedRange: true });
      await allowed.total();
      await allowed.seed(3).total();
    } finally {
      setWarningHandler(previous);
    }
    assert.equal(seen.length, 1, seen.join("\n"));
    assert.match(seen[0], /nearest trained timestep/);
  } finally {
    await model.dispose();
  }
});

Deno.test("numbers do not depend on batchSize, on per-item and on scalar-timestep models", async () => {
  const scalar = await loadModel("fixtures/models/sd-scalart-onnxdata", { device: "cpu" });
  try {
    assert.ok(scalar.sharedLogSnr, "the fixture has a scalar timestep");
    const data = new Float32Array(scalar.shape[0] * scalar.shape[1] * scalar.shape[2]).fill(0.1);
    for (const model of [scalar, oracle] as const) {
      const input = model === oracle ? image : data;
      const base = model.info(input).given(model === oracle ? EXAMPLE_PROMPT : "a red circle")
        .samples(12).seed(5);
      const reference = await base.batchSize(1).perToken();
      // the oracle is exact; onnxruntime rounds differently for other batch shapes (≈1e-6
      // relative), while draws regrouped by batch size moved the numbers by about one SE
      const tolerance = model === oracle ? 0 : 1e-5;
      const close = (a: number, b: number, what: string) =>
        assert.ok(Math.abs(a - b) <= tolerance * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
      for (const batch of [2, 5, 16]) {
        const other = await base.batchSize(batch).perToken();
        const where = `${model.name} at batch ${batch}`;
        close(other.total.nats, reference.total.nats, where);
        close(other.total.se, reference.total.se, `${where} (se)`);
        other.tokens.forEach((t, i) =>
          close(t.estimate.nats, reference.tokens[i].estimate.nats, where)
        );
      }
    }
  } finally {
    await scalar.dispose();
  }
});

Deno.test("words past the text encoder's context: refused unless allowed, then marked truncated with no estimate, one warning", async () => {
  const model = await loadModel("fixtures/models/sd-vpred", { device: "cpu" });
  try {
    const words = Array.from({ length: 80 }, (_, i) => (i % 2 ? "red" : "circle"));
    const prompt = words.join(" "); // 80 one-token words; 75 fit between BOS and EOS
    const data = new Float32Array(model.shape[0] * model.shape[1] * model.shape[2]).fill(0.1);
    // removing any word within the context lets one more cut word in: refused by default
    await assert.rejects(
      () => model.info(data).given(prompt).samples(2).perToken(),
      /cuts the two prompts of a contrast differently/,
    );
    const query = model.info(data).given(prompt).samples(2).batchSize(16).allowTruncation();
    const seen: string[] = [];
    const previous = setWarningHandler((m) => seen.push(m));
    let result;
    try {
      result = await query.perToken();
    } finally {
      setWarningHandler(previous);
    }
    assert.equal(result.tokens.length, 80);
    const cut = result.tokens.filter((t) => t.truncated);
    assert.deepEqual(cut.map((t) => t.index), [75, 76, 77, 78, 79]);
    assert.ok(cut.every((t) => Number.isNaN(t.estimate.nats) && Number.isNaN(t.estimate.se)));
    assert.ok(
      result.tokens.slice(0, 75).every((t) => !t.truncated && Number.isFinite(t.estimate.nats)),
    );
    assert.equal(seen.length, 1, seen.join("\n"));
    assert.match(seen[0], /5 word\(s\) .* past .* context/);
    assert.equal((result.toJSON().tokens as { truncated?: boolean }[])[79].truncated, true);
    assert.match(result.toString(), /past the text encoder's context/);
    // the dry run leaves them out too: the total and the 75 words within the context
    assert.equal(query.plan("perToken").contrasts.length, 1 + 75);
    await assert.rejects(() => query.about("red", { occurrence: 39 }), /past .* context/);
  } finally {
    await model.dispose();
  }
});

Deno.test("the prompt-encoding cache is bounded and keeps the most recently used prompts", async () => {
  const model = await loadModel("fixtures/models/pixel-space", {
    device: "cpu",
    promptCacheSize: 3,
  });
  try {
    const calls = () => model.stats.textEncoderCalls;
    for (const p of ["a", "b", "c", "d"]) await model.encode(p);
    assert.equal(calls(), 4);
    assert.equal(model.stats.cachedPrompts, 3);
    await model.encode("d"); // cached
    await model.encode("b"); // cached, now most recent
    assert.equal(calls(), 4);
    await model.encode("a"); // evicted first: encoded again, evicting c
    assert.equal(calls(), 5);
    await model.encode("b");
    assert.equal(calls(), 5);
    await model.encode("c");
    assert.equal(calls(), 6);
  } finally {
    await model.dispose();
  }
  await assert.rejects(
    () => loadModel("fixtures/models/pixel-space", { device: "cpu", promptCacheSize: 0 }),
    /promptCacheSize/,
  );
});

/** An estimate marked as having no standard error: no NaN or made-up error bar anywhere. */
function assertNoError(estimate: Estimate, minimum: number, what: string): void {
  assert.ok(Number.isNaN(estimate.se) && estimate.interval === undefined, what);
  assert.match(estimate.noStandardError ?? "", new RegExp(`take at least ${minimum} draws$`), what);
  assert.doesNotMatch(estimate.toString(), /NaN|±/, what);
  assert.match(estimate.toString(), /no standard error/, what);
  assert.equal(JSON.parse(JSON.stringify(estimate)).se, null, what);
}

Deno.test("too few draws for a standard error: marked as having none, never 0 ± 0 or ± NaN", async () => {
  // before: 1–2 draws gave "± NaN" with a [NaN, NaN] interval, 3–4 under the default design an
  // exact "0.0000 ± 0.0000" (2 independent units both missing where the words' information lies)
  // the fewest draws for 3 independent units: pairs sharing an α need 5, single draws 3
  const minimum = { "stratified-antithetic": 5, antithetic: 5, stratified: 3, iid: 3 } as const;
  for (const [design, least] of Object.entries(minimum)) {
    for (let n = 1; n < least; n++) {
      const q = query.design(design as keyof typeof minimum).samples(n);
      assertNoError(await q.total(), least, `${design}, ${n} draws`);
      const perToken = await q.perToken();
      for (const t of perToken.tokens) assertNoError(t.estimate, least, `${design} ${t.word}`);
      assert.doesNotMatch(perToken.toString(), /NaN|± 0\.0000\n/, `${design}, ${n} draws`);
    }
    const enough = await query.design(design as keyof typeof minimum).samples(least).total();
    assert.ok(estimateHasError(enough), `${design}, ${least} draws: ${enough}`);
  }
  // groups of 4 draws sharing an α (a scalar-timestep export's): 3 groups, the last partial
  const grouped = (samples: number) =>
    mutualInformation(oracle, image, EXAMPLE_PROMPT, { samples, drawsPerLogSnr: 4, design: "iid" });
  assertNoError((await grouped(8)).estimate, 9, "8 draws in groups of 4");
  assert.ok(estimateHasError((await grouped(9)).estimate));
  // the decomposition's terms are marked too, whatever its bootstrap would have said
  const pid = await query.samples(4).pid("red", "circle");
  for (const terms of [pid.plain, pid.conditional]) {
    for (const term of [terms.informationA, terms.redundancy, terms.synergy]) {
      assertNoError(term.estimate, 5, "pid");
    }
  }
  assert.doesNotMatch(pid.toString(), /NaN/);
});

Deno.test("a precision target's first round takes the draws a standard error needs", async () => {
  // before: 2 draws were one unit with no error; every later round was combined with it, so the
  // estimate still had none, after spending the whole budget
  const estimate = await query.samples(2).precision(10, { maxSamples: 40 }).total();
  assert.equal(estimate.samples, 5, "one round of 5 draws meets a loose target");
  assert.ok(estimateHasError(estimate), String(estimate));
});

function estimateHasError(estimate: Estimate): boolean {
  return Number.isFinite(estimate.se) && estimate.se > 0 && estimate.interval !== undefined &&
    estimate.noStandardError === undefined;
}
