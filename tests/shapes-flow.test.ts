// shapes-flow (fixtures/models/shapes-flow, issue 28): a trained FLUX.1-schnell-layout model of the
// shapes world, exported by optimum-onnx with an exact space-to-depth latent
// (tools/shapes_flow/export.py). infodiff loads it as any FLUX.1 export; its reference.json holds
// what diffusers' PyTorch FluxPipeline computes (encode_prompt at max_sequence_length 16, the
// transformer's velocity at three flow times) and tokenizer_vectors.json both tokenizers' ids as
// transformers gives them. fp32 ONNX against fp32 PyTorch: 10⁻⁴ relative to the largest value, as
// tests/onnx-family-diffusers.test.ts.
import assert from "node:assert/strict";
import {
  assertRelativelyClose,
  type PipelineReference as Reference,
  storedValues,
  withLoadedModel,
} from "./helpers.ts";
import { flowLogSnr, flowScale } from "../src/models/flow.ts";
import type { OnnxCondition } from "../src/models/onnx/onnx-model.ts";
import { latentImageIds, packLatents } from "../src/models/onnx/flux-pipeline.ts";
import type { OnnxModel } from "../src/query/load-model.ts";
import { loadImagePixels } from "../src/images/load-image.ts";

const DIR = "fixtures/models/shapes-flow";
const TOLERANCE = 1e-4;
// T5's length in training; FLUX.1-schnell's pipeline default (256) would add 240 pad tokens the
// transformer never saw
const OPTIONS = { device: "cpu", maxSequenceLength: 16 } as const;

const values = storedValues;

const close = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) =>
  assertRelativelyClose(what, a, b, TOLERANCE);

async function withModel(body: (model: OnnxModel, ref: Reference) => Promise<void>) {
  const ref = JSON.parse(await Deno.readTextFile(`${DIR}/reference.json`));
  await withLoadedModel(DIR, OPTIONS, (model) => body(model, ref));
}

Deno.test("shapes-flow: both tokenizers give transformers' ids for every committed prompt", async () => {
  const vectors: { prompt: string; tokenizer: number[]; tokenizer_2: number[] }[] = JSON.parse(
    await Deno.readTextFile(`${DIR}/tokenizer_vectors.json`),
  );
  await withModel((model) => {
    assert.equal(model.encoders.length, 2);
    for (const v of vectors) {
      assert.deepEqual([...model.encoders[0].tokenizer.inputIds(v.prompt)], v.tokenizer, v.prompt);
      assert.deepEqual(
        [...model.encoders[1].tokenizer.inputIds(v.prompt)],
        v.tokenizer_2,
        v.prompt,
      );
    }
    return Promise.resolve();
  });
});

Deno.test("shapes-flow: the latent is the image's exact 2×2 space-to-depth, packed as FLUX.1 packs", async () => {
  await withModel(async (model, ref) => {
    assert.deepEqual([...model.shape], [12, 16, 16]);
    const latent = await model.prepare(`${DIR}/reference-scene.png`);
    close("latent", latent, values(ref.latent));
    // pixel (2y + a, 2x + b) of colour c is latent channel 4c + 2a + b at (y, x), to the bit
    const pixels = await loadImagePixels(`${DIR}/reference-scene.png`, 32, 32);
    for (let c = 0; c < 3; c++) {
      for (let y = 0; y < 32; y++) {
        for (let x = 0; x < 32; x++) {
          const channel = 4 * c + 2 * (y % 2) + (x % 2);
          const at = (channel * 16 + (y >> 1)) * 16 + (x >> 1);
          assert.equal(latent[at], pixels[(c * 32 + y) * 32 + x]);
        }
      }
    }
    assert.deepEqual([...latentImageIds(model.shape)], [...values(ref.img_ids!)]);
    assert.ok(values(ref.txt_ids!).every((v) => v === 0));
    for (const level of ref.levels) {
      close(
        `t ${level.t}: packed`,
        packLatents(values(level.x_t), 1, model.shape),
        values(level.hidden_states!),
      );
    }
  });
});

Deno.test("shapes-flow: encode and predictNoise give the PyTorch pipeline's states and ε̂", async () => {
  await withModel(async (model, ref) => {
    for (const entry of ref.encoders) {
      const condition = await model.encode(entry.prompt) as OnnxCondition;
      close(
        `"${entry.prompt}" prompt_embeds`,
        condition.lastHiddenState,
        values(entry.prompt_embeds),
      );
      close(
        `"${entry.prompt}" pooled`,
        [...condition.networkInputs!.values()][0],
        values(entry.pooled_prompt_embeds),
      );
    }
    for (const prediction of ref.predictions) {
      const level = ref.levels[prediction.level];
      const s = flowScale(level.t!);
      const eps = await model.predictNoise({
        noisy: values(level.x_t).map((x) => x / s),
        logSnr: Float64Array.of(flowLogSnr(level.t!)),
        conditions: [await model.encode(prediction.prompt!)],
      });
      close(`t ${level.t}, "${prediction.prompt}"`, eps, values(prediction.eps_hat));
    }
  });
});

Deno.test("shapes-flow: an array that is both its pixels and its latent is refused until it says which", async () => {
  await withModel(async (model) => {
    // 3×32×32 pixels and the 12×16×16 latent are both 3,072 values
    const pixels = await loadImagePixels(`${DIR}/reference-scene.png`, 32, 32);
    const latent = await model.prepare(`${DIR}/reference-scene.png`);
    await assert.rejects(
      () => model.prepare(pixels),
      (error: Error) =>
        error.name === "InvalidImageError" &&
        /both this model's model data 12×16×16/.test(error.message) &&
        /\{ pixels: array \}/.test(error.message),
    );
    await assert.rejects(() => model.info(pixels).given("a red circle").samples(2).total(), {
      name: "InvalidImageError",
    });
    // { pixels } goes through the VAE (an exact space-to-depth, so it moves values, not equal)
    const encoded = await model.prepare({ pixels });
    assert.deepEqual([...encoded], [...latent]);
    assert.notDeepEqual([...pixels], [...latent]);
    // { data } is taken as it is, and a generated latent's range is not checked
    const data = latent.map((v) => 3 * v);
    assert.deepEqual([...await model.prepare({ data })], [...data]);
    // a tag whose array has the wrong length, or a pixel range that is not [−1, 1]
    await assert.rejects(
      () => model.prepare({ pixels: pixels.subarray(1) }),
      /\{ pixels \} has 3071 values; expected 3072/,
    );
    await assert.rejects(() => model.prepare({ pixels: data }), { name: "InvalidImageError" });
    // the same image as a file, as { pixels } and as { data } gives one estimate for one seed
    const query = (image: Parameters<typeof model.info>[0]) =>
      model.info(image).given("a red circle below a yellow square").samples(4).seed(3).total();
    const [file, tagged, asData] = await Promise.all([
      query(`${DIR}/reference-scene.png`),
      query({ pixels }),
      query({ data: latent }),
    ]);
    assert.equal(tagged.nats, file.nats);
    assert.equal(asData.nats, file.nats);
    assert.equal(tagged.provenance?.image.kind, "pixels");
    assert.equal(asData.provenance?.image.kind, "data");
  });
});
