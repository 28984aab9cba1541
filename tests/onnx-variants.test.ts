// Export variants of sd-int32-int64t built by tools/build_export_variants.py: other exporters'
// tensor names, generated input names, a VAE encoder that samples in its graph, and the UNets of
// other model families. Each loadable one must compute exactly what the base fixture computes.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import { ModelLoadError } from "../src/errors.ts";
import { Random } from "../src/numerics/random.ts";
import { findInGraphSampling } from "../src/models/onnx/vae-sampling.ts";
import { fixtureDir, readTruth } from "./onnx-truth.ts";

const BASE = "sd-int32-int64t";
const IMAGE = "fixtures/images/test-64.png";
const load = (name: string) => loadModel(fixtureDir(name), { device: "cpu", batchSize: 4 });

async function withModels(
  name: string,
  body: (variant: OnnxModel, base: OnnxModel) => Promise<void>,
) {
  const [variant, base] = await Promise.all([load(name), load(BASE)]);
  try {
    await body(variant, base);
  } finally {
    await Promise.all([variant.dispose(), base.dispose()]);
  }
}

for (const name of ["sd-ort-names", "sd-random-vae", "sd-unnamed-inputs"]) {
  Deno.test(`${name}: prepare gives the exact latent mean, the same every time`, async () => {
    const truth = await readTruth(BASE);
    await withModels(name, async (variant) => {
      const first = await variant.prepare(IMAGE);
      const second = await variant.prepare(IMAGE);
      assert.deepEqual(second, first, "deterministic");
      assert.equal(first.length, truth.image_latent.length);
      for (let j = 0; j < first.length; j++) {
        assert.ok(Math.abs(first[j] - truth.image_latent[j]) < 2e-5, `value ${j}`);
      }
    });
  });

  Deno.test(`${name}: noise predictions, information and decoding equal the base export's`, async () => {
    await withModels(name, async (variant, base) => {
      const random = new Random(3);
      const d = variant.shape[0] * variant.shape[1] * variant.shape[2];
      const n = 6;
      const prompts = ["", "a red circle", "a photo of a dog"];
      const batch = async (model: OnnxModel) => ({
        noisy: random.fork().fillGaussian(new Float32Array(n * d)),
        logSnr: Float64Array.from({ length: n }, (_, i) => model.snapLogSnr!(-4 + 1.5 * i)),
        conditions: await Promise.all(prompts.concat(prompts).map((p) => model.encode(p))),
      });
      const [a, b] = [await batch(variant), await batch(base)];
      b.noisy.set(a.noisy); // the same noisy data, each model's own conditions
      assert.deepEqual(await variant.predictNoise(a), await base.predictNoise(b));
      const image = await base.prepare(IMAGE);
      const total = (m: OnnxModel) =>
        m.info(image).given("a red circle").samples(8).seed(2).total();
      assert.equal((await total(variant)).nats, (await total(base)).nats);
      assert.deepEqual(await variant.decode(image), await base.decode(image));
    });
  });
}

Deno.test("in-graph sampling is found; a random graph without the mean + σ·ε pattern is refused", async () => {
  const random = await Deno.readFile(join(fixtureDir("sd-ort-names"), "vae_encoder", "model.onnx"));
  assert.deepEqual(findInGraphSampling(random, "enc"), {
    randomNode: 'RandomNormalLike ""',
    mean: "latent_sample_mean",
  });
  // the same graph with its output read straight from the noise: nothing to take the mean of
  const text = new TextDecoder("latin1").decode(random);
  assert.ok(text.includes("scaled_eps"));
  const broken = random.slice();
  const at = text.indexOf("Add");
  broken.set(new TextEncoder().encode("Sub"), at); // the Add that adds the noise becomes a Sub
  assert.throws(() => findInGraphSampling(broken, "enc"), /no mean \+ σ·ε pattern/);
});

Deno.test("LCM and SDXL UNets are refused with what they are", async () => {
  await assert.rejects(
    () => load("sd-lcm"),
    (e: Error) => e instanceof ModelLoadError && /timestep_cond, i\.e\. an LCM/.test(e.message),
  );
  await assert.rejects(
    () => load("sd-xl-unet"),
    (e: Error) => e instanceof ModelLoadError && /text_embeds, i\.e\. an SDXL UNet/.test(e.message),
  );
});

Deno.test("an export optimized for CUDA is refused on the CPU with what it uses and what to do", async () => {
  await assert.rejects(
    () => load("sd-cuda-only"),
    (e: Error) =>
      e instanceof ModelLoadError &&
      /optimized for CUDA: it uses GroupNorm \(com\.microsoft\)/.test(e.message) &&
      /device: "cuda"/.test(e.message) &&
      /Could not find an implementation for GroupNorm/.test(String((e.cause as Error)?.message)),
  );
});
