import assert from "node:assert/strict";
import { loadModel } from "../src/query/load-model.ts";
import type { OnnxModel } from "../src/query/load-model.ts";
import { Random } from "../src/numerics/random.ts";
import sharp from "sharp";
import { InferenceSession, Tensor } from "onnxruntime-node";
import {
  EXACT_FIXTURES,
  exactNoise,
  fixtureDir,
  type FixtureTruth,
  meanOf,
  readTruth,
} from "./onnx-truth.ts";

/** What each fixture exercises (REFERENCE §5 variants). */
const EXPECTED: Record<string, { shape: number[]; shared: boolean; latent: boolean }> = {
  "sd-int32-int64t": { shape: [4, 8, 8], shared: false, latent: true },
  "sd-floatt-weightspb": { shape: [4, 8, 8], shared: false, latent: true },
  "sd-scalart-onnxdata": { shape: [4, 8, 8], shared: true, latent: true },
  "sd-vpred": { shape: [4, 8, 8], shared: false, latent: true },
  "sd-fp16": { shape: [4, 8, 8], shared: true, latent: true },
  "pixel-space": { shape: [3, 16, 16], shared: false, latent: false },
};

/** fp16 I/O rounds every tensor to 11 significant bits; fp32 graphs agree to float32 precision. */
function tolerance(name: string): number {
  return name === "sd-fp16" ? 3e-3 : 2e-6;
}

async function withModel(
  name: string,
  body: (model: OnnxModel, truth: FixtureTruth) => Promise<void>,
) {
  const model = await loadModel(fixtureDir(name), { device: "cpu", batchSize: 4 });
  try {
    await body(model, await readTruth(name));
  } finally {
    await model.dispose();
  }
}

for (const name of EXACT_FIXTURES) {
  Deno.test(`${name}: shape, schedule, timestep kind and token ids come from the export`, async () => {
    await withModel(name, async (model, truth) => {
      assert.deepEqual([...model.shape], EXPECTED[name].shape);
      assert.deepEqual([...model.shape], truth.shape);
      assert.equal(model.sharedLogSnr, EXPECTED[name].shared);
      assert.equal(model.latent, EXPECTED[name].latent);
      assert.equal(model.device, "cpu");
      assert.equal(model.schedule!.predictionType, truth.prediction_type);
      assert.deepEqual(model.logSnrRange, model.schedule!.range);
      const pixels = EXPECTED[name].latent ? model.shape[1] * 8 : model.shape[1];
      assert.deepEqual(model.imageSize, { width: pixels, height: pixels });
      for (const [prompt, entry] of Object.entries(truth.prompts)) {
        const condition = await model.encode(prompt);
        assert.deepEqual(Array.from(condition.inputIds), entry.input_ids, `ids of "${prompt}"`);
      }
      assert.equal(model.tokenizer.padId, truth.pad_id);
    });
  });

  Deno.test(`${name}: prepare() decodes, scales to [−1,1] and VAE-encodes (mean × scaling factor)`, async () => {
    await withModel(name, async (model, truth) => {
      const path = `fixtures/images/${truth.image}`;
      const bytes = await Deno.readFile(path);
      for (const input of [path, bytes, sharp(bytes)]) {
        const x = await model.prepare(input);
        assert.equal(x.length, truth.image_latent.length);
        for (let j = 0; j < x.length; j++) {
          assert.ok(Math.abs(x[j] - truth.image_latent[j]) < 10 * tolerance(name), `value ${j}`);
        }
      }
    });
  });

  Deno.test(`${name}: predictNoise equals the closed-form Gaussian denoiser`, async () => {
    await withModel(name, async (model, truth) => {
      const prompts = [
        "",
        "a red circle",
        "a photo of a big red dog on the green grass",
        "red circle",
      ];
      const conditions = await Promise.all(prompts.map((p) => model.encode(p)));
      assert.equal(await model.encode("a red circle"), conditions[1], "conditions are cached");
      const random = new Random(11);
      const n = 10; // more than batchSize 4: several calls; mixed α: split for scalar timesteps
      const d = truth.image_latent.length;
      const noisy = new Float32Array(n * d);
      random.fillGaussian(noisy);
      const logSnr = Float64Array.from({ length: n }, (_, i) => model.snapLogSnr!(-5 + 1.3 * i));
      const batch = {
        noisy,
        logSnr,
        conditions: Array.from({ length: n }, (_, i) => conditions[i % 4]),
      };
      const output = await model.predictNoise(batch);
      assert.equal(output.length, n * d);
      for (let i = 0; i < n; i++) {
        const s = model.schedule!.alphasCumprod[model.schedule!.nearestTimestep(logSnr[i])];
        assert.ok(Math.abs(s - 1 / (1 + Math.exp(-logSnr[i]))) < 1e-12, "σ(snapped α) = ᾱ_t");
        const mu = meanOf(truth, batch.conditions[i].prompt);
        const expected = exactNoise(noisy.subarray(i * d, (i + 1) * d), mu, truth.variance, s);
        for (let j = 0; j < d; j++) {
          const scale = 1 + Math.abs(expected[j]);
          assert.ok(
            Math.abs(output[i * d + j] - expected[j]) < tolerance(name) * scale,
            `item ${i} value ${j}: ${output[i * d + j]} vs ${expected[j]}`,
          );
        }
      }
      const stats = model.stats;
      assert.equal(stats.unetItems, n);
      // ε-batches of 4 need ⌈10/4⌉ = 3 calls; a scalar timestep needs one call per distinct α (10)
      assert.equal(stats.unetCalls, EXPECTED[name].shared ? n : 3);
    });
  });
}

Deno.test("fp16 model: float16 tensors go in and out as bit patterns while Float16Array stays defined", async () => {
  await withModel("sd-fp16", async (model) => {
    const condition = await model.encode("a blue square");
    // last_hidden_state values are fp16-representable: rounding them again changes nothing
    const { toFloat16Bits, fromFloat16Bits } = await import("../src/models/onnx/float16.ts");
    const again = fromFloat16Bits(toFloat16Bits(condition.lastHiddenState));
    assert.deepEqual(again, condition.lastHiddenState);
    assert.equal(typeof (globalThis as Record<string, unknown>).Float16Array, "function");
  });
});

Deno.test("v-prediction fixture: the raw UNet output is v and predictNoise converts it to ε", async () => {
  await withModel("sd-vpred", async (model, truth) => {
    const d = truth.image_latent.length;
    const noisy = Float32Array.from(truth.image_latent, (x, j) => x + Math.cos(j));
    const t = model.schedule!.nearestTimestep(0.5);
    const s = model.schedule!.alphasCumprod[t];
    const condition = await model.encode("a red circle");
    const eps = await model.predictNoise({
      noisy,
      logSnr: Float64Array.of(model.snapLogSnr!(0.5)),
      conditions: [condition],
    });
    const expected = exactNoise(noisy, meanOf(truth, "a red circle"), truth.variance, s);
    // the graph itself outputs v = (ε − sqrt(1−ᾱ)·z)/sqrt(ᾱ)
    const session = await InferenceSession.create(`${fixtureDir("sd-vpred")}/unet/model.onnx`);
    const raw = await session.run({
      sample: new Tensor("float32", noisy, [1, 4, 8, 8]),
      timestep: new Tensor("int64", BigInt64Array.of(BigInt(t)), [1]),
      encoder_hidden_states: new Tensor("float32", condition.lastHiddenState, [1, 77, 8]),
    });
    const v = raw.out_sample.data as Float32Array;
    await session.release();
    let differs = 0;
    for (let j = 0; j < d; j++) {
      assert.ok(Math.abs(eps[j] - expected[j]) < 1e-5, `ε ${j}`);
      const expectedV = (expected[j] - Math.sqrt(1 - s) * noisy[j]) / Math.sqrt(s);
      assert.ok(Math.abs(v[j] - expectedV) < 1e-4 * (1 + Math.abs(expectedV)), `v ${j}`);
      differs = Math.max(differs, Math.abs(v[j] - eps[j]));
    }
    assert.ok(differs > 0.1, "v and ε differ, so the conversion was needed");
  });
});

Deno.test("decode() runs the VAE decoder on the unscaled latent; dispose is safe twice", async () => {
  const model = await loadModel(fixtureDir("sd-int32-int64t"), { device: "cpu" });
  const latent = new Float32Array(4 * 8 * 8).fill(0.25); // scaling 0.5 → 0.5 before decoding
  const pixels = await model.decode(latent);
  assert.equal(pixels.length, 3 * 64 * 64);
  // decoder = nearest 8× upsampling, identity on the first 3 channels, tanh
  assert.ok(Math.abs(pixels[0] - Math.tanh(0.5)) < 1e-6);
  await model.dispose();
  await model.dispose();
  await assert.rejects(async () => await model.encode("a"), /disposed/);
});

Deno.test("sd-realsize: SD-sized tensors (512 px, 4×64×64 latent, 77×1024 hidden states)", async () => {
  const model = await loadModel(fixtureDir("sd-realsize"), { device: "cpu" });
  try {
    assert.deepEqual([...model.shape], [4, 64, 64]);
    assert.deepEqual(model.imageSize, { width: 512, height: 512 });
    assert.ok(model.sharedLogSnr);
    const condition = await model.encode("a red circle");
    assert.equal(condition.lastHiddenState.length, 77 * 1024);
    // the 64 px test image is resized up to 512 px before VAE encoding (default scaling 0.18215)
    const x = await model.prepare("fixtures/images/test-64.png");
    assert.equal(x.length, 4 * 64 * 64);
    const eps = await model.predictNoise({
      noisy: x,
      logSnr: Float64Array.of(model.snapLogSnr!(0)),
      conditions: [condition],
    });
    assert.equal(eps.length, x.length);
    assert.ok(eps.every(Number.isFinite));
  } finally {
    await model.dispose();
  }
});

Deno.test("sd-fixedbatch: a UNet with a static batch of 2 gets padded calls, same ε̂ as its twin", async () => {
  const model = await loadModel(fixtureDir("sd-fixedbatch"), { device: "cpu", batchSize: 16 });
  try {
    const truth = await readTruth("sd-int32-int64t"); // same parameters, dynamic batch
    assert.equal(model.batchSize, 2, "the export's fixed batch overrides the option");
    const conditions = await Promise.all(
      ["", "a red circle", "a blue square"].map((p) => model.encode(p)),
    );
    const d = 256;
    const n = 3; // odd: the last call is padded with a repeated item
    const noisy = new Float32Array(n * d);
    new Random(4).fillGaussian(noisy);
    const logSnr = Float64Array.from([2, -1, 0.3], (a) => model.snapLogSnr!(a));
    const output = await model.predictNoise({ noisy, logSnr, conditions });
    for (let i = 0; i < n; i++) {
      const s = 1 / (1 + Math.exp(-logSnr[i]));
      const expected = exactNoise(
        noisy.subarray(i * d, (i + 1) * d),
        meanOf(truth, conditions[i].prompt),
        truth.variance,
        s,
      );
      for (let j = 0; j < d; j++) {
        assert.ok(Math.abs(output[i * d + j] - expected[j]) < 2e-6 * (1 + Math.abs(expected[j])));
      }
    }
    assert.equal(model.stats.unetCalls, 2);
  } finally {
    await model.dispose();
  }
});
