/**
 * DDIM sampling and inversion against known truths.
 *
 * Closed form used throughout: for data x ~ N(μ, v·I) the exact denoiser is affine in z, so one
 * DDIM step from s to s' maps u = z − √s·μ to u' = u·(√(s·s')·v + √((1−s)(1−s')))/(s·v + 1 − s)
 * (derivation: x̂₀ = μ + u·√s·v/τ, ε̂ = √(1−s)·u/τ, τ = s·v + 1 − s). A whole run is therefore a
 * known scalar per dimension, which the implementation must reproduce to float precision — on the
 * oracle (log-SNR grid) and through the ONNX path (trained timesteps of the pixel-space fixture).
 */
import assert from "node:assert/strict";
import {
  ddimBatch,
  ddimLadder,
  generate,
  generateFrom,
  initialNoise,
  invert,
  toPixels,
} from "../src/generation/ddim.ts";
import { EXAMPLE_PROMPT } from "../src/models/example.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { mixtureModel } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { InvalidArgumentError, InvalidImageError } from "../src/errors.ts";
import { meanOf, readTruth } from "./onnx-truth.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { findObject } from "../src/datasets/shapes/recognise.ts";

const sigmoid = (a: number) => 1 / (1 + Math.exp(-a));
const mse = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let sum = 0;
  for (let j = 0; j < a.length; j++) sum += (a[j] - b[j]) ** 2;
  return sum / a.length;
};

/** The factor a DDIM generation multiplies u_T = x_T − √s_T·μ by, for Gaussian data of variance v. */
function gaussianDdimFactor(levels: Float64Array, v: number) {
  const s = Array.from(levels, sigmoid);
  const step = (from: number, to: number) =>
    (Math.sqrt(from * to) * v + Math.sqrt((1 - from) * (1 - to))) / (from * v + 1 - from);
  let factor = 1;
  for (let k = s.length - 1; k >= 0; k--) factor *= step(s[k], k === 0 ? 1 : s[k - 1]);
  return factor;
}

Deno.test("ladder: oracle grid spans the reference range [−5, 7]; schedule uses leading spacing", async () => {
  const grid = ddimLadder(exampleOracle(), 4);
  assert.equal(grid.source, "log-snr grid");
  assert.deepEqual(Array.from(grid.logSnr), [7, 3, -1, -5]);
  const model = await loadModel("fixtures/models/pixel-space", { device: "cpu" });
  try {
    const ladder = ddimLadder(model, 50);
    assert.equal(ladder.source, "schedule");
    // diffusers DDIMScheduler, "leading", steps_offset = 1: 1, 21, …, 981
    assert.deepEqual(
      Array.from(ladder.timesteps!),
      Array.from({ length: 50 }, (_, k) => 20 * k + 1),
    );
    ladder.timesteps!.forEach((t, k) => assert.equal(ladder.logSnr[k], model.schedule!.logSnr[t]));
    // as in diffusers, the offset is not dropped at 1000 steps: 1…1000 passes the last timestep
    assert.throws(() => ddimLadder(model, 1000), /reach timestep 1000/);
    assert.deepEqual(Array.from(ddimLadder(model, 999).timesteps!.slice(0, 3)), [1, 2, 3]);
    assert.throws(() => ddimLadder(model, 1001), InvalidArgumentError);
  } finally {
    await model.dispose();
  }
  assert.throws(() => ddimLadder(exampleOracle(), 0), InvalidArgumentError);
});

Deno.test("generation on one Gaussian equals the closed-form DDIM map (oracle grid)", async () => {
  const v = 0.3, mu = [0.5, -0.25, 1, 0];
  const model = mixtureModel({
    shape: [1, 2, 2],
    components: [{ words: ["a"], mean: mu, variance: v }],
  });
  for (const steps of [1, 7, 50]) {
    const xT = initialNoise(model, steps);
    const x = await generateFrom(model, xT, "a", { steps });
    const levels = ddimLadder(model, steps).logSnr;
    const factor = gaussianDdimFactor(levels, v);
    const sT = sigmoid(levels[steps - 1]);
    mu.forEach((m, j) => {
      const expected = m + factor * (xT[j] - Math.sqrt(sT) * m);
      assert.ok(Math.abs(x[j] - expected) < 1e-5, `steps ${steps}, j ${j}: ${x[j]} vs ${expected}`);
    });
  }
  // many steps approach the probability-flow ODE's map from α = −5 to α = 7, √(τ_7/τ_−5),
  // followed by DDIM's last jump from α = 7 to clean data (factor √s·v/τ at α = 7)
  const levels = ddimLadder(model, 2000).logSnr;
  const tau = (a: number) => sigmoid(a) * v + 1 - sigmoid(a);
  const ode = Math.sqrt(tau(7) / tau(-5)) * Math.sqrt(sigmoid(7)) * v / tau(7);
  const ratio = gaussianDdimFactor(levels, v) / ode;
  assert.ok(Math.abs(ratio - 1) < 1e-3, `DDIM/ODE factor ratio ${ratio}`);
});

Deno.test("generation and inversion through ONNX (pixel-space fixture) equal the closed form", async () => {
  const truth = await readTruth("pixel-space");
  const model = await loadModel("fixtures/models/pixel-space", { device: "cpu", batchSize: 4 });
  try {
    const prompt = "red circle", mu = meanOf(truth, prompt), v = truth.variance, steps = 20;
    const levels = ddimLadder(model, steps).logSnr;
    const sT = sigmoid(levels[steps - 1]);
    const x = await generate(model, prompt, { steps, seed: 3 });
    const xT = initialNoise(model, 3);
    const factor = gaussianDdimFactor(levels, v);
    let worst = 0;
    mu.forEach((m, j) => {
      worst = Math.max(worst, Math.abs(x[j] - (m + factor * (xT[j] - Math.sqrt(sT) * m))));
    });
    assert.ok(worst < 1e-4, `generate: worst deviation ${worst}`);
    // inversion evaluates the exact ε̂ at the level it moves to, with the current z
    const back = await invert(model, x, prompt, { steps });
    worst = 0;
    mu.forEach((m, j) => {
      let z = x[j], from = 1;
      for (const alpha of levels) {
        const to = sigmoid(alpha);
        const eps = Math.sqrt(1 - to) * (z - Math.sqrt(to) * m) / (to * v + 1 - to);
        const x0 = (z - Math.sqrt(1 - from) * eps) / Math.sqrt(from);
        z = Math.sqrt(to) * x0 + Math.sqrt(1 - to) * eps;
        from = to;
      }
      worst = Math.max(worst, Math.abs(back[j] - z));
    });
    assert.ok(worst < 1e-4, `invert: worst deviation ${worst}`);
    // a pixel-space model decodes to its own data
    assert.deepEqual(await toPixels(model, x), x);
  } finally {
    await model.dispose();
  }
});

Deno.test("invert then regenerate with the same prompt reconstructs the image (example oracle)", async () => {
  // DDIM inversion is approximate (ε̂ is evaluated at the next level with the current z), so the
  // round trip has an O(1/steps^p) error. Measured on this oracle: MSE ≈ 1.4e-3 at 50 steps,
  // 4e-4 at 100; regenerating from a random x_T instead gives ≈ 0.1 (2·variance: another draw of
  // the same component). Bounds: 50 steps < 5e-3 (a broken inversion lands at ≈ 0.1), and the
  // error must shrink with steps (100 steps < ½ of 20 steps).
  const model = exampleOracle();
  for (const seed of [1, 2]) {
    const x = model.sample(EXAMPLE_PROMPT, { seed });
    const roundTrip = async (steps: number) => {
      const xT = await invert(model, x, EXAMPLE_PROMPT, { steps });
      return mse(await generateFrom(model, xT, EXAMPLE_PROMPT, { steps }), x);
    };
    const at50 = await roundTrip(50);
    const random = mse(await generate(model, EXAMPLE_PROMPT, { steps: 50, seed: 100 + seed }), x);
    assert.ok(at50 < 5e-3, `round trip MSE ${at50}`);
    assert.ok(random > 20 * at50, `random x_T gives ${random}, round trip ${at50}`);
    assert.ok((await roundTrip(100)) < 0.5 * (await roundTrip(20)));
  }
});

Deno.test("generate lands on a component that carries the prompt's words (example oracle)", async () => {
  const model = exampleOracle();
  for (
    const [prompt, seed] of [["a green triangle on the bottom", 1], ["a blue square", 2]] as const
  ) {
    const x = await generate(model, prompt, { steps: 30, seed });
    const distances = model.components.map((c) => mse(c.mean, x));
    const nearest = model.components[distances.indexOf(Math.min(...distances))];
    for (const word of model.knownWords(prompt)) assert.ok(nearest.words.includes(word), prompt);
    assert.ok(Math.min(...distances) < 0.1, `${Math.min(...distances)}`);
  }
  // deterministic: the same seed gives the same sample
  assert.deepEqual(
    await generate(model, "a red square", { steps: 10, seed: 4 }),
    await generate(model, "a red square", { steps: 10, seed: 4 }),
  );
});

Deno.test("batched runs equal single runs; guidance 1 equals no guidance; g > 1 moves the sample", async () => {
  const model = exampleOracle();
  const prompts = ["a red circle on the left", "a green square on the right", "a blue triangle"];
  const batch = await ddimBatch(
    model,
    prompts.map((prompt, i) => ({ prompt, start: initialNoise(model, i) })),
    "generate",
    { steps: 15 },
  );
  for (const [i, prompt] of prompts.entries()) {
    assert.deepEqual(
      batch[i],
      await generateFrom(model, initialNoise(model, i), prompt, { steps: 15 }),
    );
  }
  const plain = await generate(model, "a red circle", { steps: 15, seed: 1 });
  assert.deepEqual(
    await generate(model, "a red circle", { steps: 15, seed: 1, guidance: 1 }),
    plain,
  );
  const guided = await generate(model, "a red circle", { steps: 15, seed: 1, guidance: 3 });
  assert.ok(mse(guided, plain) > 1e-6);
});

Deno.test("model.generate / model.invert methods on the oracle; bad inputs are refused", async () => {
  const model = exampleOracle();
  assert.deepEqual(
    await model.generate("a red circle", { steps: 10, seed: 2 }),
    await generate(model, "a red circle", { steps: 10, seed: 2 }),
  );
  const x = model.sample("a red circle", { seed: 1 });
  assert.deepEqual(
    await model.invert(x, "a red circle", { steps: 10 }),
    await invert(model, x, "a red circle", { steps: 10 }),
  );
  await assert.rejects(
    () => generateFrom(model, new Float32Array(3), "a red circle"),
    InvalidImageError,
  );
  await assert.rejects(
    () => generate(model, "a red circle", { guidance: NaN }),
    InvalidArgumentError,
  );
  await assert.rejects(() => generate(model, "a red circle", { steps: 2.5 }), InvalidArgumentError);
});

Deno.test("ONNX models: model.generate/invert, an image path through prepare, VAE decoding", async () => {
  const pixelModel = await loadModel("fixtures/models/pixel-space", { device: "cpu" });
  try {
    assert.deepEqual(
      await pixelModel.generate("a blue", { steps: 5, seed: 1 }),
      await generate(pixelModel, "a blue", { steps: 5, seed: 1 }),
    );
    const fromPath = await pixelModel.invert("fixtures/images/test-16.png", "a blue", {
      steps: 5,
    });
    const data = await pixelModel.prepare("fixtures/images/test-16.png");
    assert.deepEqual(fromPath, await invert(pixelModel, data, "a blue", { steps: 5 }));
  } finally {
    await pixelModel.dispose();
  }
  const latentModel = await loadModel("fixtures/models/sd-int32-int64t", { device: "cpu" });
  try {
    const latent = await latentModel.generate("red circle", { steps: 4, seed: 2 });
    assert.equal(latent.length, 4 * 8 * 8);
    const pixels = await toPixels(latentModel, latent);
    const r = latentModel.imageSize.width;
    assert.equal(pixels.length, 3 * r * r);
    assert.ok(pixels.every(Number.isFinite));
  } finally {
    await latentModel.dispose();
  }
});

Deno.test("shapes-tiny: DDIM samples from held-out captions show the named colour and shape", async () => {
  // measured with tools/measure_generation.ts: 97.5 % of 120 held-out single-object captions at
  // 50 steps. Here 8 captions at 25 steps, seeds 0…7; asserted ≥ 6 of 8 right (both attributes).
  const model = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  try {
    const scenes = shapesWorld({ seed: 1, split: "test", count: 80 }).scenes
      .filter((s) => s.objects.length === 1).slice(0, 8);
    const data = await ddimBatch(
      model,
      scenes.map((s, i) => ({ prompt: s.caption, start: initialNoise(model, i) })),
      "generate",
      { steps: 25 },
    );
    const right = scenes.filter((scene, i) => {
      const { colour, shape } = scene.objects[0];
      return findObject(data[i], 32, 32, colour)?.shape === shape;
    }).length;
    assert.ok(right >= 6, `${right}/8 samples show the named colour and shape`);
  } finally {
    await model.dispose();
  }
});
