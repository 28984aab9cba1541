import assert from "node:assert/strict";
import { mixtureModel } from "../src/query/oracles.ts";
import { Random } from "../src/numerics/random.ts";
import { InvalidArgumentError, InvalidImageError, PromptError } from "../src/errors.ts";
import { colourShapeMixture } from "./helpers.ts";

const sigmoid = (t: number) => 1 / (1 + Math.exp(-t));

Deno.test("one Gaussian: the denoiser is the closed form and its MMSE per dimension is σ(α + log v)", async () => {
  const v = 0.3, mu = [0.4, -0.2, 0.1];
  const model = mixtureModel({
    shape: [3, 1, 1],
    components: [{ words: [], mean: mu, variance: v }],
  });
  const condition = await model.encode("");
  const random = new Random(5);
  for (const alpha of [-3, 0, 2.5]) {
    const s = sigmoid(alpha);
    let squared = 0;
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const x = model.sample("", { seed: i + 17 });
      const eps = random.fillGaussian(new Float32Array(3));
      const z = x.map((xi, j) => Math.sqrt(s) * xi + Math.sqrt(1 - s) * eps[j]);
      const pred = await model.predictNoise({
        noisy: z,
        logSnr: new Float64Array([alpha]),
        conditions: [condition],
      });
      for (let j = 0; j < 3; j++) {
        const closed = Math.sqrt(1 - s) * (z[j] - Math.sqrt(s) * mu[j]) / (s * v + 1 - s);
        assert.ok(Math.abs(pred[j] - closed) < 1e-5);
        squared += (eps[j] - pred[j]) ** 2;
      }
    }
    const mmse = squared / (3 * n);
    const expected = sigmoid(alpha + Math.log(v));
    // sd of a mean of (ε−ε̂)² with ε−ε̂ ~ N(0, m): m·√2/√(3n)
    assert.ok(
      Math.abs(mmse - expected) < 4 * expected * Math.sqrt(2 / (3 * n)),
      `${mmse} vs ${expected}`,
    );
  }
});

Deno.test("logDensity is the exact mixture log-density and conditions on known words", () => {
  const model = colourShapeMixture();
  const x = new Float32Array([0.9, 0.4, 0.1, 0]);
  const log = (mu: number[], v: number) =>
    -2 * Math.log(2 * Math.PI * v) - mu.reduce((s, m, j) => s + (x[j] - m) ** 2, 0) / (2 * v);
  const a = log([1, 0.5, 0, 0], 0.3), b = log([0, 0, 1, 0.5], 0.3), c = log([0.5, 1, 0, 0.5], 0.2);
  const all = Math.log((Math.exp(a) + Math.exp(b) + 2 * Math.exp(c)) / 4);
  assert.ok(Math.abs(model.logDensity(x, "") - all) < 1e-9);
  assert.ok(Math.abs(model.logDensity(x, "a photo") - all) < 1e-9); // unknown words are ignored
  assert.ok(Math.abs(model.logDensity(x, "RED circle!") - a) < 1e-9);
  const red = Math.log((Math.exp(a) + 2 * Math.exp(c)) / 3);
  assert.ok(Math.abs(model.logDensity(x, "red") - red) < 1e-9);
  assert.deepEqual(model.knownWords("A red thing, red"), ["red"]);
  assert.throws(() => model.logDensity(x, "blue square"), PromptError);
});

Deno.test("samples come from the restricted mixture (mean check)", () => {
  const model = colourShapeMixture();
  const sum = new Float64Array(4);
  const n = 4000;
  for (let i = 0; i < n; i++) model.sample("blue", { seed: i }).forEach((v, j) => (sum[j] += v));
  const expected = [0, 0, 1, 0.5], sd = Math.sqrt(0.3 / n);
  sum.forEach((s, j) => assert.ok(Math.abs(s / n - expected[j]) < 4 * sd));
  assert.deepEqual(model.sample("red", { seed: 3 }), model.sample("red", { seed: 3 }));
});

Deno.test("bad input: clear typed errors that say what was expected", async () => {
  const model = colourShapeMixture();
  const x = model.sample("red", { seed: 1 });
  const expectError = async (
    fn: () => unknown,
    type: new (message: string) => Error,
    pattern: RegExp,
  ) => {
    await assert.rejects(async () => await fn(), (e: Error) => {
      assert.ok(e instanceof type, `${e.name}: ${e.message}`);
      assert.match(e.message, pattern);
      return true;
    });
  };
  await expectError(
    () => model.info(new Float32Array(3)).given("red").total(),
    InvalidImageError,
    /expected a Float32Array of 4 values \(shape 1×2×2\), got 3/,
  );
  await expectError(
    () => model.info(new Float32Array([0, NaN, 0, 0])).given("red").total(),
    InvalidImageError,
    /value 1 is NaN/,
  );
  await expectError(
    () => model.info(new Float32Array([0, Infinity, 0, 0])).given("red").total(),
    InvalidImageError,
    /Infinity/,
  );
  await expectError(
    () => model.info(x).given("red").samples(0),
    InvalidArgumentError,
    /samples must be a positive integer, got 0/,
  );
  await expectError(() => model.info(x).given("red").samples(2.5), InvalidArgumentError, /got 2.5/);
  await expectError(
    () => model.info(x).given("a red circle").about("dog"),
    PromptError,
    /"dog" is not in the prompt "a red circle"; expected one of its words: a, red, circle/,
  );
  await expectError(
    () => model.info(x).given("red").estimator("exact" as unknown as "standard"),
    InvalidArgumentError,
    /unknown estimator "exact"; expected one of "orthogonal", "standard"/,
  );
  await expectError(
    () => model.info(x).total(),
    InvalidArgumentError,
    /call \.given\(prompt\) first/,
  );
  await expectError(
    () => model.info(x).given("red").logSnr({ scale: -1 }),
    InvalidArgumentError,
    /scale > 0/,
  );
  await expectError(
    () => mixtureModel({ shape: [1, 1, 1], components: [] }),
    InvalidArgumentError,
    /at least one component, got an empty components list/,
  );
  await expectError(
    () => mixtureModel({ shape: [1, 1, 1], components: [{ words: [], mean: [0], variance: -1 }] }),
    InvalidArgumentError,
    /variance must be a finite number > 0, got -1/,
  );
  await expectError(
    () => mixtureModel({ shape: [1, 1, 2], components: [{ words: [], mean: [0], variance: 1 }] }),
    InvalidArgumentError,
    /mean has 1 values, expected 2/,
  );
});
