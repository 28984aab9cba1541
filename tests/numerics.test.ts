import assert from "node:assert/strict";
import { Random } from "../src/numerics/random.ts";
import {
  defaultLogSnrSampling,
  logSnrWeight,
  REFERENCE_LOG_SNR,
  sampleLogSnr,
} from "../src/numerics/log-snr.ts";
import { bootstrap, meanWithError, pearson } from "../src/numerics/statistics.ts";
import { InvalidArgumentError } from "../src/errors.ts";

Deno.test("Random: fillGaussian gives gaussian()'s very values and leaves the same state", () => {
  // the fill runs the generator on locals; the stream must not change (seeded numbers everywhere
  // depend on it), including the ziggurat's wedge and tail, which draw extra uniforms
  for (const seed of [1, 7, 2 ** 33 + 5]) {
    const filled = new Random(seed), oneByOne = new Random(seed);
    const z = filled.fillGaussian(new Float64Array(200_000));
    let tails = 0;
    for (let i = 0; i < z.length; i++) {
      assert.equal(z[i], oneByOne.gaussian(), `seed ${seed}, value ${i}`);
      if (Math.abs(z[i]) > 3.442619855899) tails++;
    }
    assert.ok(tails > 20, `the tail was reached (${tails} values)`);
    assert.equal(filled.nextUint32(), oneByOne.nextUint32());
  }
});

Deno.test("Random: same seed, same stream; moments of the Gaussian", () => {
  const a = new Random(123), b = new Random(123), c = new Random(124);
  const xs = Array.from({ length: 5 }, () => a.nextUint32());
  assert.deepEqual(xs, Array.from({ length: 5 }, () => b.nextUint32()));
  assert.notDeepEqual(xs, Array.from({ length: 5 }, () => c.nextUint32()));
  const z = new Random(1).fillGaussian(new Float64Array(1000000));
  const m = meanWithError(z);
  assert.ok(Math.abs(m.mean) < 4 * m.se);
  const variance = z.reduce((s, v) => s + v * v, 0) / z.length;
  assert.ok(Math.abs(variance - 1) < 4 * Math.sqrt(2 / z.length)); // sd of the sample variance
  // Tails and shape: P(|z| > k) for k = 1, 2, 3, 3.5 (the ziggurat's base strip starts at 3.44)
  // against the normal distribution, within 4 binomial standard deviations.
  for (const [k, p] of [[1, 0.3173105], [2, 0.0455003], [3, 0.0026998], [3.5, 0.000465]]) {
    const share = z.filter((v) => Math.abs(v) > k).length / z.length;
    assert.ok(
      Math.abs(share - p) < 4 * Math.sqrt(p * (1 - p) / z.length),
      `P(|z|>${k}) = ${share}`,
    );
  }
  const fourth = z.reduce((s, v) => s + v ** 4, 0) / z.length;
  assert.ok(Math.abs(fourth - 3) < 4 * Math.sqrt(96 / z.length), `E z⁴ = ${fourth}`);
  const u = new Random(2);
  for (let i = 0; i < 1000; i++) {
    const v = u.uniform();
    assert.ok(v > 0 && v < 1);
  }
  assert.throws(() => new Random(NaN), InvalidArgumentError);
});

Deno.test("log-SNR sampler: draws stay in the clip range and E_q[w] is the range length", () => {
  const random = new Random(3);
  const n = 100000;
  const weights: number[] = [];
  for (let i = 0; i < n; i++) {
    const { logSnr, weight } = sampleLogSnr(random, REFERENCE_LOG_SNR);
    assert.ok(logSnr >= -5 && logSnr <= 7);
    weights.push(weight);
  }
  // ∫ 1 dα over [−5, 7] = 12 = E_q[1/q].
  const m = meanWithError(weights);
  assert.ok(Math.abs(m.mean - 12) < 4 * m.se, `${m.mean} ± ${m.se}`);
});

Deno.test("log-SNR weight is 1/q: the density integrates to one over the range", () => {
  const s = { loc: 0.5, scale: 1.5, clip: 4 };
  let integral = 0;
  const steps = 200000, low = s.loc - s.scale * s.clip, high = s.loc + s.scale * s.clip;
  const h = (high - low) / steps;
  for (let i = 0; i < steps; i++) integral += h / logSnrWeight(low + (i + 0.5) * h, s);
  assert.ok(Math.abs(integral - 1) < 1e-6, `${integral}`);
});

Deno.test("schedule-aware default sampling covers exactly the trained range", () => {
  const s = defaultLogSnrSampling({ min: -5.364, max: 7.069 });
  assert.ok(Math.abs(s.loc - s.scale * s.clip - -5.364) < 1e-12);
  assert.ok(Math.abs(s.loc + s.scale * s.clip - 7.069) < 1e-12);
  assert.deepEqual(defaultLogSnrSampling(undefined), REFERENCE_LOG_SNR);
});

Deno.test("statistics: mean/se closed form, Pearson, bootstrap se of a mean ≈ sd/√n", () => {
  const m = meanWithError([2, 4, 4, 4, 5, 5, 7, 9]);
  assert.equal(m.mean, 5);
  assert.ok(Math.abs(m.se - Math.sqrt(32 / 7 / 8)) < 1e-12);
  assert.ok(Math.abs(pearson([1, 2, 3, 4], [4, 3, 2, 1]) + 1) < 1e-12);
  assert.ok(Math.abs(pearson([1, 2, 3, 4], [1, 3, 2, 4]) - 0.8) < 1e-12);
  const x = new Random(4).fillGaussian(new Float64Array(400));
  const b = bootstrap(x.length, (idx) => idx.reduce((s, i) => s + x[i], 0) / idx.length, {
    resamples: 2000,
    seed: 1,
  });
  const expected = meanWithError(x).se;
  assert.ok(Math.abs(b.se - expected) < 0.1 * expected, `${b.se} vs ${expected}`);
  assert.ok(b.interval[0] < b.estimate && b.estimate < b.interval[1]);
  assert.throws(() => pearson([1], [2]), InvalidArgumentError);
});
