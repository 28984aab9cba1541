// SDXL, SD 3 and FLUX.1 equal to diffusers (issue 24, part 4 "Equal to diffusers"): the tiny
// pipelines of fixtures/models/tiny-* are real diffusers pipelines exported by optimum-onnx, and
// their reference.json holds what diffusers' PyTorch pipeline computes for a fixed image, prompts,
// noise levels and ε (tools/build_family_pipelines.py, fixtures/models/FAMILIES.md). Through ONNX,
// infodiff must give the same token ids per tokenizer, the same encoder_hidden_states and pooled
// vectors (each family's encode_prompt), the same latent (VAE mean, scaling, shift), the same ids
// and packing, and the same ε̂ at each (prompt, noise level): fp32, 10⁻⁴ relative to the largest
// value (the exporter's own ONNX-vs-PyTorch check is ≤ 4·10⁻⁶).
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
import type { LoadModelOptions } from "../src/models/onnx/load-model.ts";
import type { OnnxModel } from "../src/query/load-model.ts";

const TOLERANCE = 1e-4;
const IMAGE = "fixtures/images/test-64.png";

const FAMILIES = ["tiny-sdxl", "tiny-sd3", "tiny-flux", "tiny-flux-schnell"] as const;

const values = storedValues;

async function reference(name: string): Promise<Reference> {
  return JSON.parse(await Deno.readTextFile(`fixtures/models/${name}/reference.json`));
}

const close = (what: string, a: ArrayLike<number>, b: ArrayLike<number>) =>
  assertRelativelyClose(what, a, b, TOLERANCE);

async function withModel(
  name: string,
  body: (model: OnnxModel, ref: Reference) => Promise<void>,
  options: LoadModelOptions = {},
): Promise<void> {
  const ref = await reference(name);
  await withLoadedModel(`fixtures/models/${name}`, options, (model) => body(model, ref));
}

for (const name of FAMILIES) {
  Deno.test(`${name}: every tokenizer gives the pipeline's ids; prepare gives its latent`, async () => {
    await withModel(name, async (model, ref) => {
      const tokenizers = ref.encoders[0].input_ids;
      assert.equal(model.encoders.length, Object.keys(tokenizers).length, "one per tokenizer");
      for (const entry of ref.encoders) {
        model.encoders.forEach(({ tokenizer }, k) => {
          const key = k === 0 ? "tokenizer" : `tokenizer_${k + 1}`;
          assert.deepEqual(
            [...tokenizer.inputIds(entry.prompt)],
            entry.input_ids[key],
            `${key}: "${entry.prompt.slice(0, 40)}"`,
          );
        });
      }
      close("latent", await model.prepare(IMAGE), values(ref.latent));
    });
  });

  Deno.test(`${name}: encode gives encode_prompt's hidden states and pooled vector`, async () => {
    await withModel(name, async (model, ref) => {
      for (const entry of ref.encoders) {
        // SDXL's "" is its unconditional (force_zeros_for_empty_prompt): checked below
        if (name === "tiny-sdxl" && entry.prompt === "") continue;
        const condition = await model.encode(entry.prompt) as OnnxCondition;
        const what = `"${entry.prompt.slice(0, 40)}"`;
        close(`${what} prompt_embeds`, condition.lastHiddenState, values(entry.prompt_embeds));
        const pooled = [...condition.networkInputs!.values()][0];
        close(`${what} pooled`, pooled, values(entry.pooled_prompt_embeds));
      }
    });
  });

  Deno.test(`${name}: predictNoise gives the pipeline's ε̂ at every (prompt, noise level)`, async () => {
    await withModel(name, async (model, ref) => {
      for (const prediction of ref.predictions) {
        const level = ref.levels[prediction.level];
        const xt = values(level.x_t);
        let noisy: Float32Array, logSnr: number;
        if (level.t !== undefined) {
          // flow: x_α = x_t / s at α = 2·log((1 − t)/t)
          const s = flowScale(level.t);
          noisy = xt.map((x) => x / s);
          logSnr = flowLogSnr(level.t);
        } else {
          // SDXL: x_t is already the VP channel, at its trained timestep's α
          noisy = xt;
          logSnr = Math.log(level.alpha_bar!) - Math.log1p(-level.alpha_bar!);
          assert.equal(model.schedule!.nearestTimestep(logSnr), level.timestep);
        }
        // SDXL's null prompt is the zero unconditional, which encode("") gives
        const condition = await model.encode(prediction.prompt ?? "");
        if (name === "tiny-sdxl" && prediction.prompt === "") continue; // "" encoded: below
        const eps = await model.predictNoise({
          noisy,
          logSnr: Float64Array.of(logSnr),
          conditions: [condition],
        });
        close(
          `level ${prediction.level}, "${(prediction.prompt ?? "null").slice(0, 30)}"`,
          eps,
          values(prediction.eps_hat),
        );
      }
    });
  });
}

Deno.test('tiny-sdxl: the unconditional is zeros as force_zeros_for_empty_prompt says; "" encoded on request', async () => {
  await withModel("tiny-sdxl", async (model, ref) => {
    const zeros = await model.encode("") as OnnxCondition;
    close("zero prompt_embeds", zeros.lastHiddenState, values(ref.unconditional!.prompt_embeds));
    assert.ok(zeros.lastHiddenState.every((v) => v === 0));
    assert.ok([...zeros.networkInputs!.values()][0].every((v) => v === 0));
    assert.equal((await model.identity!()).pipeline?.unconditional, "zeros");
  });
  await withModel("tiny-sdxl", async (model, ref) => {
    const entry = ref.encoders.find((e) => e.prompt === "")!;
    const encoded = await model.encode("") as OnnxCondition;
    close('"" prompt_embeds', encoded.lastHiddenState, values(entry.prompt_embeds));
    close('"" pooled', [...encoded.networkInputs!.values()][0], values(entry.pooled_prompt_embeds));
    for (const prediction of ref.predictions.filter((p) => p.prompt === "")) {
      const level = ref.levels[prediction.level];
      const eps = await model.predictNoise({
        noisy: values(level.x_t),
        logSnr: Float64Array.of(Math.log(level.alpha_bar!) - Math.log1p(-level.alpha_bar!)),
        conditions: [encoded],
      });
      close(`level ${prediction.level}, ""`, eps, values(prediction.eps_hat));
    }
    const identity = await model.identity!();
    assert.equal(identity.pipeline?.unconditional, "encoded");
  }, { unconditional: "encoded" });
});

Deno.test("tiny-sdxl: time_ids are (R, R, 0, 0, R, R) of the image, recorded in the identity", async () => {
  await withModel("tiny-sdxl", async (model, ref) => {
    const timeIds = [...values(ref.time_ids!)].join(",");
    assert.equal((await model.identity!()).pipeline?.timeIds, timeIds);
  });
});

Deno.test("tiny-flux: img_ids, txt_ids and the packed latent are the pipeline's", async () => {
  for (const name of ["tiny-flux", "tiny-flux-schnell"]) {
    const ref = await reference(name);
    await withModel(name, (model) => {
      assert.deepEqual([...latentImageIds(model.shape)], [...values(ref.img_ids!)]);
      assert.ok(values(ref.txt_ids!).every((v) => v === 0));
      for (const level of ref.levels) {
        close(
          `t ${level.t}: packed x_t`,
          packLatents(values(level.x_t), 1, model.shape),
          values(level.hidden_states!),
        );
      }
      return Promise.resolve();
    });
  }
});

Deno.test("tiny-flux (dev): the guidance is recorded in every result; schnell has none", async () => {
  await withModel("tiny-flux", async (model, ref) => {
    const identity = await model.identity!();
    assert.equal(identity.pipeline?.guidance, ref.guidance);
    const total = await model.info(IMAGE).given("a red circle").samples(2).seed(1).total();
    assert.equal(total.provenance?.model.pipeline?.guidance, 1);
    assert.equal(total.provenance?.model.sha256, identity.sha256);
  });
  await withModel("tiny-flux", async (model) => {
    assert.equal((await model.identity!()).pipeline?.guidance, 3.5);
  }, { guidance: 3.5 });
  await withModel("tiny-flux-schnell", async (model) => {
    assert.equal((await model.identity!()).pipeline?.guidance, undefined);
  });
});

Deno.test("a word past CLIP's 77 tokens but within T5's is cut for the CLIPs only, and seen", async () => {
  for (const name of ["tiny-sd3", "tiny-flux"]) {
    await withModel(name, async (model, ref) => {
      // the reference's fourth prompt: 90 words, past CLIP's context, within T5's
      const long = ref.encoders[3].prompt;
      const reads = model.encoderTokens!(long);
      const byEncoder = new Map(reads.map((r) => [r.encoder, r]));
      const clip = byEncoder.get("text_encoder")!;
      const t5 = byEncoder.get(name === "tiny-sd3" ? "text_encoder_3" : "text_encoder_2")!;
      assert.ok(clip.cutWords.length > 0 && clip.kept < clip.total, "CLIP cuts the prompt");
      assert.equal(t5.cutWords.length, 0, "T5 reads it whole");
      assert.equal(t5.kept, t5.total);
      assert.deepEqual([...model.truncatedWords!(long)], [], "every word is seen by some encoder");
      // a result about the last word records CLIP's cut (only CLIP's), and its number is finite
      const lastWord = long.split(" ").at(-1)!;
      const about = await model.info(IMAGE).given(long).samples(3).seed(1).allowTruncation()
        .about(lastWord);
      assert.ok(Number.isFinite(about.nats));
      const cut = about.provenance!.truncation!;
      assert.ok(cut.length > 0, "the cut is recorded");
      assert.ok(cut.every((c) => c.encoder !== t5.encoder), "by the CLIP encoders only, not T5");
    });
  }
});
