// The fluent Query itself: immutability, prepare-once, validation at the setter, the missing-prompt
// message, and plan() against what the terminals really do (a spy denoiser counts it).
import assert from "node:assert/strict";
import { InvalidArgumentError, PromptError } from "../src/errors.ts";
import type { Denoiser, NoiseBatch } from "../src/models/denoiser.ts";
import { EXAMPLE_PROMPT, exampleDenoiser } from "../src/models/example.ts";
import { createModel } from "../src/query/model.ts";
import type { QueryPlan } from "../src/query/query.ts";

/** A denoiser that counts what is asked of it (the example oracle underneath). */
function spy() {
  const inner = exampleDenoiser();
  const counts = { prepare: 0, calls: 0, items: 0, prompts: new Set<string>() };
  const denoiser: Denoiser = {
    name: "spy",
    shape: inner.shape,
    batchSize: 8,
    sharedLogSnr: false,
    encode: (prompt) => {
      counts.prompts.add(prompt);
      return inner.encode(prompt);
    },
    predictNoise: (batch: NoiseBatch) => {
      counts.calls++;
      counts.items += batch.logSnr.length;
      return inner.predictNoise(batch);
    },
    prepare: (image) => {
      counts.prepare++;
      return inner.prepare(image);
    },
    dispose: () => Promise.resolve(),
  };
  return { model: createModel(denoiser), counts, image: inner.sample(EXAMPLE_PROMPT, { seed: 1 }) };
}

Deno.test("Query: setters return new queries and leave the old one as it was", () => {
  const { model, image } = spy();
  const base = model.info(image).given(EXAMPLE_PROMPT);
  const before = JSON.stringify(base.describe());
  const derived = base.samples(7).seed(3).estimator("standard").batchSize(4).logSnr({ clip: 2 })
    .given("a red circle").allowTruncation();
  assert.notEqual(derived, base);
  assert.equal(JSON.stringify(base.describe()), before);
  assert.deepEqual(derived.describe(), {
    model: "spy",
    prompt: "a red circle",
    options: {
      samples: 7,
      seed: 3,
      estimator: "standard",
      batchSize: 4,
      logSnr: { clip: 2 },
      allowTruncation: true,
    },
  });
  assert.throws(() => {
    (base.options as { samples?: number }).samples = 1;
  }, TypeError);
});

Deno.test("Query: the image is prepared once for every query derived from the same info()", async () => {
  const { model, counts, image } = spy();
  const base = model.info(image).given(EXAMPLE_PROMPT).samples(4);
  assert.equal(counts.prepare, 0, "building queries prepares nothing");
  await base.total();
  await base.seed(2).total();
  await base.given("a red circle").perToken();
  assert.equal(counts.prepare, 1);
  await model.info(image).given("a red circle").samples(2).total();
  assert.equal(counts.prepare, 2, "a new info() prepares its own image");
});

Deno.test("Query: setters validate at once, with typed errors", () => {
  const { model, image } = spy();
  const q = model.info(image);
  const bad: [string, () => unknown][] = [
    ["samples(0)", () => q.samples(0)],
    ["samples(1.5)", () => q.samples(1.5)],
    ["batchSize(-1)", () => q.batchSize(-1)],
    ["seed(NaN)", () => q.seed(NaN)],
    ['estimator("exact")', () => q.estimator("exact" as never)],
    ["logSnr({ scale: -1 })", () => q.logSnr({ scale: -1 })],
    ['onProgress("x")', () => q.onProgress("x" as never)],
    ["given(5)", () => q.given(5 as never)],
    ['allowTruncation("yes")', () => q.allowTruncation("yes" as never)],
  ];
  for (const [what, call] of bad) assert.throws(call, InvalidArgumentError, what);
});

Deno.test("Query: a terminal without .given() says how to call it", async () => {
  const { model, image } = spy();
  for (const terminal of ["total", "perPixel", "perToken"] as const) {
    await assert.rejects(
      () => model.info(image)[terminal](),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes(".given("),
    );
  }
  assert.throws(() => model.info(image).plan("perToken"), /\.given\(/);
  assert.throws(() => model.info(image).given("a red circle").plan("about", "blue"), PromptError);
});

Deno.test("Query.plan: prompts, contrasts, model calls and items match what each terminal does", async () => {
  const cases: [
    string,
    (q: ReturnType<typeof base>) => QueryPlan,
    (q: ReturnType<typeof base>) => Promise<unknown>,
  ][] = [
    ["total", (q) => q.plan("total"), (q) => q.total()],
    ["perPixel", (q) => q.plan("perPixel"), (q) => q.perPixel()],
    ["perToken", (q) => q.plan("perToken"), (q) => q.perToken()],
    ["nll", (q) => q.plan("nll"), (q) => q.nll()],
    ["about", (q) => q.plan("about", "circle"), (q) => q.about("circle")],
    ["pid", (q) => q.plan("pid", "red", "circle"), (q) => q.pid("red", "circle")],
  ];
  function base(s: ReturnType<typeof spy>, batch: number) {
    return s.model.info(s.image).given(EXAMPLE_PROMPT).samples(13).batchSize(batch);
  }
  for (const batch of [1, 5, 8, 32]) {
    for (const [name, plan, run] of cases) {
      const s = spy();
      const planned = plan(base(s, batch));
      assert.equal(s.counts.prepare, 0, `${name}: plan prepares nothing`);
      assert.equal(s.counts.calls, 0, `${name}: plan runs nothing`);
      await run(base(s, batch));
      const where = `${name} at batch ${batch}`;
      assert.equal(planned.modelCalls, s.counts.calls, `${where}: calls`);
      assert.equal(planned.modelItems, s.counts.items, `${where}: items`);
      assert.deepEqual(new Set(planned.prompts), s.counts.prompts, `${where}: prompts`);
      assert.equal(planned.samples, 13);
    }
  }
  const s = spy();
  const about = base(s, 8).plan("about", "red");
  assert.deepEqual(about.contrasts, [{ with: EXAMPLE_PROMPT, without: "a circle on the left" }]);
  assert.deepEqual(base(s, 8).plan("total").contrasts, [{ with: EXAMPLE_PROMPT, without: "" }]);
  assert.deepEqual(base(s, 8).plan("nll").denoisingErrors, [EXAMPLE_PROMPT]);
});
