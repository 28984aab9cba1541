// Joint-attention maps of diffusion transformers (issue 25, parts 1 and 4): SD 3's MMDiT blocks
// and FLUX.1's double- and single-stream blocks attend over one [image; text] (SD 3) or
// [text; image] (FLUX.1) sequence. The capability returns each block's image-query × text-key
// probabilities, sliced inside the edited graph, and they must equal what diffusers' PyTorch
// transformer computes when scaled_dot_product_attention is written out as softmax(QKᵀ·scale)
// (attention-map-diffusers' hook): fixtures/attention/joint-reference.json, made by
// tools/make_joint_attention_reference.py on the same tiny pipelines, prompt and x_t as
// reference.json. Tolerance: 2·10⁻⁶ absolute on probabilities (fp32 ONNX against fp32 PyTorch;
// the exporter's own check of the velocity is ≤ 4·10⁻⁶ relative).
import assert from "node:assert/strict";
import { type StoredArray, storedValues, withLoadedModel } from "./helpers.ts";
import { ModelLoadError } from "../src/errors.ts";
import { flowLogSnr, flowScale } from "../src/models/flow.ts";
import {
  addJointAttentionBlocks,
  jointAttentionLayers,
  readAttentionGraph,
} from "../src/models/onnx/attention-graph.ts";
import onnxProto from "npm:onnx-proto@8.0.1";
import * as ort from "npm:onnxruntime-node@1.30.0";
import {
  type AttentionHost,
  conceptAttentionBlocks,
  OnnxCrossAttention,
} from "../src/models/onnx/cross-attention.ts";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import { DaamAccumulator, wordAttention } from "../src/attention/word-attention.ts";
import { InvalidArgumentError } from "../src/errors.ts";
import {
  type AttentionLayerMap,
  type CrossAttention,
  type NoiseBatch,
  withMembers,
} from "../src/models/denoiser.ts";

const TOLERANCE = 2e-6;

type Stored = StoredArray;
interface ReferenceLayer {
  readonly node: string;
  readonly dims: [number, number, number];
  readonly rowSums: Stored;
  readonly columns: number[];
  readonly values: Stored;
}
interface FamilyReference {
  readonly t: number;
  readonly text: number;
  readonly layers: readonly ReferenceLayer[];
  readonly concept: readonly ReferenceLayer[];
}

const values = storedValues;

function withModel(name: string, body: (model: OnnxModel) => Promise<void> | void) {
  return withLoadedModel(`fixtures/models/${name}`, {}, body);
}

const reference = JSON.parse(
  await Deno.readTextFile("fixtures/attention/joint-reference.json"),
);

for (const name of ["tiny-sd3", "tiny-flux"]) {
  Deno.test(`${name}: the joint-attention blocks equal diffusers' (image queries × text keys, every layer and head)`, async () => {
    const ref: FamilyReference = reference[name];
    const models = JSON.parse(await Deno.readTextFile(`fixtures/models/${name}/reference.json`));
    const level = models.levels[reference.level];
    await withModel(name, async (model) => {
      assert.equal(model.attention.supported(), true);
      assert.equal(model.attention.unavailable, undefined);
      assert.equal(model.attention.contextLength, ref.text);
      const s = flowScale(level.t);
      const prediction = await model.attention.predict({
        noisy: values(level.x_t).map((x) => x / s),
        logSnr: new Float64Array([flowLogSnr(level.t)]),
        conditions: [await model.encode(reference.prompt)],
      });
      const layers = prediction.layers[0];
      assert.deepEqual(layers.map((l) => l.node), ref.layers.map((l) => l.node));
      layers.forEach((layer, l) => {
        const want = ref.layers[l];
        const [heads, cells, tokens] = want.dims;
        assert.deepEqual([layer.heads, layer.height * layer.width, layer.tokens], want.dims);
        const sums = values(want.rowSums), stored = values(want.values);
        let worst = 0;
        for (let h = 0; h < heads; h++) {
          for (let p = 0; p < cells; p++) {
            const row = layer.probs.subarray(
              (h * cells + p) * tokens,
              (h * cells + p + 1) * tokens,
            );
            const sum = row.reduce((a, b) => a + b, 0);
            // a row of the block is the text's share of an image query's probabilities
            assert.ok(sum > 0 && sum <= 1 + 1e-6, `${layer.node} head ${h} row ${p}: sum ${sum}`);
            worst = Math.max(worst, Math.abs(sum - sums[h * cells + p]));
            want.columns.forEach((t, j) => {
              const at = (h * cells + p) * want.columns.length + j;
              worst = Math.max(worst, Math.abs(row[t] - stored[at]));
            });
          }
        }
        assert.ok(worst <= TOLERANCE, `${layer.node}: largest difference ${worst} > ${TOLERANCE}`);
      });
    });
  });
}

for (const name of ["tiny-sd3", "tiny-flux"]) {
  Deno.test(`${name}: the concept-attention maps equal ConceptAttention's with the prompt's tokens as concepts`, async () => {
    const ref: FamilyReference = reference[name];
    const models = JSON.parse(await Deno.readTextFile(`fixtures/models/${name}/reference.json`));
    const level = models.levels[reference.level];
    await withModel(name, async (model) => {
      const concept = model.conceptAttention!;
      assert.equal(concept.supported(), true);
      const s = flowScale(level.t);
      const prediction = await concept.predict({
        noisy: values(level.x_t).map((x) => x / s),
        logSnr: new Float64Array([flowLogSnr(level.t)]),
        conditions: [await model.encode(reference.prompt)],
      });
      const layers = prediction.layers[0];
      assert.deepEqual(layers.map((l) => l.node), ref.concept.map((l) => l.node));
      layers.forEach((layer, l) => {
        const want = ref.concept[l];
        const [, cells, tokens] = want.dims;
        assert.deepEqual([layer.heads, layer.height * layer.width, layer.tokens], want.dims);
        // each token's map is a softmax over the image tokens
        for (let t = 0; t < tokens; t++) {
          let sum = 0;
          for (let p = 0; p < cells; p++) sum += layer.probs[p * tokens + t];
          assert.ok(Math.abs(sum - 1) < 1e-5, `${layer.node} token ${t}: sums to ${sum}`);
        }
        const sums = values(want.rowSums), stored = values(want.values);
        let worst = 0;
        for (let p = 0; p < cells; p++) {
          const row = layer.probs.subarray(p * tokens, (p + 1) * tokens);
          worst = Math.max(worst, Math.abs(row.reduce((a, b) => a + b, 0) - sums[p]) / tokens);
          want.columns.forEach((t, j) => {
            worst = Math.max(worst, Math.abs(row[t] - stored[p * want.columns.length + j]));
          });
        }
        assert.ok(worst <= TOLERANCE, `${layer.node}: largest difference ${worst} > ${TOLERANCE}`);
      });
    });
  });
}

Deno.test("tiny-sd3: a word's text tokens are its CLIP sub-tokens and its T5 sub-tokens after CLIP's 77", async () => {
  await withModel("tiny-sd3", (model) => {
    const prompt = "a small red circle";
    const red = model.attention.wordTokens(prompt)[2];
    const clip = model.tokenizer.wordPositions(prompt)[2].positions;
    const t5 = model.encoders[2].tokenizer.wordPositions(prompt)[2].positions;
    assert.equal(red.word, "red");
    assert.deepEqual(red.positions, [...clip, ...t5.map((p) => p + 77)]);
  });
});

Deno.test("tiny-flux: a word's text tokens are its T5 sub-tokens", async () => {
  await withModel("tiny-flux", (model) => {
    const prompt = "a small red circle";
    const t5 = model.encoders[1].tokenizer.wordPositions(prompt);
    const words = model.attention.wordTokens(prompt);
    assert.deepEqual(words.map((w) => [w.word, w.positions]), t5.map((w) => [w.word, w.positions]));
  });
});

for (const name of ["exact-sd3", "exact-flux"]) {
  Deno.test(`${name}: a transformer graph without attention says its maps are unavailable, and why`, async () => {
    await withModel(name, async (model) => {
      assert.equal(model.attention.supported(), false);
      assert.match(model.attention.unavailable ?? "", /no joint-attention Softmax node/);
      await assert.rejects(
        () =>
          model.attention.predict({
            noisy: new Float32Array(model.shape.reduce((a, b) => a * b, 1)),
            logSnr: new Float64Array([0]),
            conditions: [],
          }),
        ModelLoadError,
      );
    });
  });
}

Deno.test("tiny SD 3 through onnxruntime's mmdit optimizer: each fused MultiHeadAttention's query and key are found", () => {
  const path = "fixtures/attention/tiny-sd3-fused-transformer.onnx";
  const graph = readAttentionGraph(Deno.readFileSync(path), path);
  assert.equal(graph.fused.length, 2);
  const layers = jointAttentionLayers(graph);
  assert.ok(typeof layers !== "string", String(layers));
  assert.deepEqual(layers.map((l) => [l.node, l.fromQueryKey?.keyLayout, l.fromQueryKey?.heads]), [
    ["/transformer_blocks.0/attn/MultiHeadAttention_0", "BNSH", 4],
    ["/transformer_blocks.1/attn/MultiHeadAttention_1", "BNSH", 4],
  ]);
  // the output projections survive the fusion: concept attention compares outputs, not probabilities
  const blocks = conceptAttentionBlocks(graph);
  assert.ok(
    typeof blocks !== "string" && blocks.map((b) => b.node).join() === "/transformer_blocks.0",
  );
});

Deno.test("a fused transformer export is named as one", () => {
  const reason = jointAttentionLayers({
    source: "transformer/model.onnx",
    layers: [],
    joint: [],
    fused: ['com.microsoft.MultiHeadAttention "/transformer_blocks.0/attn/MHA"'],
    externalData: false,
  });
  assert.match(String(reason), /fused attention .*MultiHeadAttention.*without --optimize/);
});

Deno.test("tiny-flux: wordAttention draws the concept maps: DAAM's aggregation of the word's tokens over the concept blocks", async () => {
  await withModel("tiny-flux", async (model) => {
    const data = await model.prepare("fixtures/images/test-64.png");
    const prompt = "a small red circle";
    // one draw: the sampled-noise gathering at a single (α, ε) of the reference law
    const options = { samples: 1, seed: 3, maps: "concept" as const };
    const map = await wordAttention(model, data, prompt, "red", options);
    // the same draw through the capability, aggregated by DAAM's accumulator
    const concept = model.conceptAttention!;
    let traced: NoiseBatch | undefined;
    const spy: CrossAttention = {
      contextLength: concept.contextLength,
      supported: () => concept.supported(),
      wordTokens: (prompt) => concept.wordTokens(prompt),
      predict: (batch) => {
        traced = batch;
        return concept.predict(batch);
      },
    };
    await wordAttention(
      withMembers(model, { conceptAttention: spy }),
      data,
      prompt,
      "red",
      options,
    );
    const daam = new DaamAccumulator(model.attention.wordTokens(prompt)[2].positions);
    daam.add((await model.conceptAttention!.predict(traced!)).layers[0]);
    const want = daam.heatmap(8, 8);
    assert.equal(map.width, 8);
    map.data.forEach((v, i) => assert.ok(Math.abs(v - want.data[i]) < 1e-6, `cell ${i}`));
    const joint = await wordAttention(model, data, prompt, "red", {
      ...options,
      maps: "attention",
    });
    assert.ok(
      joint.data.some((v, i) => Math.abs(v - map.data[i]) > 1e-3),
      "differs from attention",
    );
  });
});

Deno.test("a UNet has no concept-attention maps: asking for them is refused, saying why", async () => {
  await withModel("attention-tiny", async (model) => {
    await assert.rejects(
      () =>
        wordAttention(model, new Float32Array(3 * 8 * 8), "a red circle", "red", {
          maps: "concept",
        }),
      (error: Error) =>
        error instanceof InvalidArgumentError && /no concept-attention maps/.test(error.message),
    );
  });
});

Deno.test("tiny-flux: above the memory budget the blocks are averaged inside the graph, giving DAAM's mean over (layer, head)", async () => {
  await withModel("tiny-flux", async (model) => {
    const layout = {
      order: "text-image" as const,
      textTokens: 512,
      imageTokens: 16,
      wordTokens: (prompt: string) => model.attention.wordTokens(prompt),
    };
    // a budget of 0 bytes: every transformer aggregates
    // the loaded model is the ONNX denoiser, which hosts the capability
    const host = model as unknown as AttentionHost;
    const aggregated = new OnnxCrossAttention(host, layout, "attention", 0);
    const batch = {
      noisy: await model.prepare("fixtures/images/test-64.png"),
      logSnr: new Float64Array([0.5]),
      conditions: [await model.encode("a small red circle")],
    };
    const [[mean]] = (await aggregated.predict(batch)).layers;
    const [layers] = (await model.attention.predict(batch)).layers;
    assert.deepEqual([mean.heads, mean.height, mean.width, mean.tokens], [1, 4, 4, 512]);
    const maps = layers.reduce((n, l) => n + l.heads, 0);
    assert.equal(maps, 4);
    let worst = 0;
    for (let i = 0; i < 16 * 512; i++) {
      // each layer's head mean, then the mean over layers (both layers have 2 heads)
      let want = 0;
      for (const layer of layers) {
        for (let h = 0; h < layer.heads; h++) want += layer.probs[h * 16 * 512 + i] / layer.heads;
      }
      worst = Math.max(worst, Math.abs(mean.probs[i] - want / layers.length));
    }
    assert.ok(worst < 1e-7, `largest difference ${worst}`);
  });
});

/** fixtures/models/tiny-sd3 copied to a temporary folder, its transformer replaced by the fused one. */
function fusedTinySd3(): string {
  const dir = Deno.makeTempDirSync();
  const copy = (from: string, to: string) => {
    Deno.mkdirSync(to, { recursive: true });
    for (const entry of Deno.readDirSync(from)) {
      if (entry.isDirectory) copy(`${from}/${entry.name}`, `${to}/${entry.name}`);
      else Deno.copyFileSync(`${from}/${entry.name}`, `${to}/${entry.name}`);
    }
  };
  copy("fixtures/models/tiny-sd3", dir);
  Deno.copyFileSync(
    "fixtures/attention/tiny-sd3-fused-transformer.onnx",
    `${dir}/transformer/model.onnx`,
  );
  return dir;
}

Deno.test("tiny SD 3, fused: the joint-attention blocks computed from Q and K, and the concept maps, equal diffusers'", async () => {
  const ref: FamilyReference = reference["tiny-sd3"];
  const models = JSON.parse(await Deno.readTextFile("fixtures/models/tiny-sd3/reference.json"));
  const level = models.levels[reference.level];
  const dir = fusedTinySd3();
  const model = await loadModel(dir, { device: "cpu" });
  try {
    assert.equal(model.attention.supported(), true);
    const s = flowScale(level.t);
    const batch = {
      noisy: values(level.x_t).map((x) => x / s),
      logSnr: new Float64Array([flowLogSnr(level.t)]),
      conditions: [await model.encode(reference.prompt)],
    };
    const check = (layers: readonly AttentionLayerMap[], wanted: readonly ReferenceLayer[]) => {
      assert.equal(layers.length, wanted.length);
      layers.forEach((layer, l) => {
        const want = wanted[l], stored = values(want.values), sums = values(want.rowSums);
        const [heads, cells, tokens] = want.dims;
        assert.deepEqual([layer.heads, layer.height * layer.width, layer.tokens], want.dims);
        let worst = 0;
        for (let r = 0; r < heads * cells; r++) {
          const row = layer.probs.subarray(r * tokens, (r + 1) * tokens);
          const sum = row.reduce((a, b) => a + b, 0);
          worst = Math.max(
            worst,
            Math.abs(sum - sums[r]) / (want.node.includes("Softmax") ? 1 : tokens),
          );
          want.columns.forEach((t, j) => {
            worst = Math.max(worst, Math.abs(row[t] - stored[r * want.columns.length + j]));
          });
        }
        assert.ok(worst <= TOLERANCE, `${layer.node}: largest difference ${worst} > ${TOLERANCE}`);
      });
    };
    check((await model.attention.predict(batch)).layers[0], ref.layers);
    check((await model.conceptAttention!.predict(batch)).layers[0], ref.concept);
  } finally {
    await model.dispose();
    Deno.removeSync(dir, { recursive: true });
  }
});

/**
 * A stand-in transformer graph of the given opset: x [1, heads, N, 1] → per block the
 * probabilities softmax(c_b·x·xᵀ) under FLUX.1's Softmax names, reduced into its output.
 */
function standInGraph(opset: number, heads: number, n: number, blocks: number): Uint8Array {
  const { onnx } = onnxProto;
  const INTS = onnx.AttributeProto.AttributeType.INTS, INT = onnx.AttributeProto.AttributeType.INT;
  type Attribute = { name: string; type: number; ints?: number[]; i?: number };
  const node: {
    name: string;
    opType: string;
    input: string[];
    output: string[];
    attribute: Attribute[];
  }[] = [{
    name: "t",
    opType: "Transpose",
    input: ["x"],
    output: ["xt"],
    attribute: [{ name: "perm", type: INTS, ints: [0, 1, 3, 2] }],
  }];
  const initializer = [];
  const outputs = [];
  for (let b = 0; b < blocks; b++) {
    const at = `/transformer_blocks.${b}/attn/`;
    initializer.push({ name: `${at}c`, dims: [], dataType: 1, floatData: [1 + b] });
    node.push(
      {
        name: `${at}Mul`,
        opType: "Mul",
        input: ["x", `${at}c`],
        output: [`${at}q`],
        attribute: [],
      },
      {
        name: `${at}MatMul`,
        opType: "MatMul",
        input: [`${at}q`, "xt"],
        output: [`${at}s`],
        attribute: [],
      },
      {
        name: `${at}Softmax`,
        opType: "Softmax",
        input: [`${at}s`],
        output: [`${at}Softmax_output_0`],
        attribute: [{ name: "axis", type: INT, ints: [], i: -1 }],
      },
    );
    outputs.push(`${at}Softmax_output_0`);
  }
  const value = (name: string, dims: number[]) => ({
    name,
    type: { tensorType: { elemType: 1, shape: { dim: dims.map((d) => ({ dimValue: d })) } } },
  });
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: opset }],
    graph: {
      name: "stand-in",
      node,
      initializer,
      input: [value("x", [1, heads, n, 1])],
      output: outputs.map((name) => ({ name })),
    },
  }).finish();
}

for (const opset of [17, 18]) {
  Deno.test(`the in-graph mean over heads and layers at opset ${opset} (ReduceMean's axes ${opset < 18 ? "attribute" : "input"}) equals the blocks' mean`, async () => {
    const heads = 3, text = 5, image = 7, n = text + image, blocks = 2;
    const bytes = standInGraph(opset, heads, n, blocks);
    const layers = readAttentionGraph(bytes, "stand-in").joint!;
    assert.equal(layers.length, blocks);
    const sequence = { order: "text-image" as const, textTokens: text };
    const x = new ort.Tensor(
      "float32",
      Float32Array.from({ length: heads * n }, (_, i) => Math.sin(i)),
      [1, heads, n, 1],
    );
    const run = async (edited: { bytes: Uint8Array; outputs: string[] }) => {
      const session = await ort.InferenceSession.create(edited.bytes);
      try {
        const result = await session.run({ x });
        return edited.outputs.map((name) => result[name]);
      } finally {
        await session.release();
      }
    };
    const perLayer = await run(addJointAttentionBlocks(bytes, layers, sequence));
    const [sum] = await run(addJointAttentionBlocks(bytes, layers, sequence, true));
    assert.deepEqual(sum.dims, [1, image, text]);
    for (let i = 0; i < image * text; i++) {
      let want = 0;
      for (const block of perLayer) {
        for (let h = 0; h < heads; h++) {
          want += (block.data as Float32Array)[h * image * text + i] / heads;
        }
      }
      assert.ok(Math.abs((sum.data as Float32Array)[i] - want) < 1e-6, `cell ${i}`);
    }
  });
}

Deno.test("every layer's block is sliced right after its own attention, so no run holds every layer's probabilities", async () => {
  // onnxruntime frees a block's probabilities ([heads, N, N]: 2 GB a block at FLUX.1's 1,024²)
  // after their last reader; the edit's Slice is one, so where it runs decides how many blocks'
  // probabilities live at once. Its profile gives the order the kernels ran in.
  const path = "fixtures/attention/flux-three-blocks-transformer.onnx";
  const bytes = Deno.readFileSync(path);
  const layers = jointAttentionLayers(readAttentionGraph(bytes, path));
  assert.ok(typeof layers !== "string", String(layers));
  assert.equal(layers.length, 4, "3 double-stream blocks and 1 single-stream block");
  const T = 8, P = 16;
  const edited = addJointAttentionBlocks(bytes, layers, { order: "text-image", textTokens: T });
  const dir = await Deno.makeTempDir();
  const session = await ort.InferenceSession.create(edited.bytes, {
    enableProfiling: true,
    profileFilePrefix: `${dir}/profile`,
  });
  const values = (n: number) => new Float32Array(n).map((_, i) => Math.sin(i));
  const result = await session.run({
    hidden_states: new ort.Tensor("float32", values(P * 64), [1, P, 64]),
    encoder_hidden_states: new ort.Tensor("float32", values(T * 32), [1, T, 32]),
    pooled_projections: new ort.Tensor("float32", values(16), [1, 16]),
    timestep: new ort.Tensor("float32", new Float32Array([0.5]), [1]),
    img_ids: new ort.Tensor("float32", values(P * 3), [P, 3]),
    txt_ids: new ort.Tensor("float32", new Float32Array(T * 3), [T, 3]),
    guidance: new ort.Tensor("float32", new Float32Array([1]), [1]),
  });
  session.endProfiling();
  await session.release();
  try {
    // the outputs still come in layer order, each [1, heads, P, T]
    assert.deepEqual(
      edited.outputs.map((name) => result[name].dims.slice(2)),
      layers.map(() => [P, T]),
    );
    const [file] = [...Deno.readDirSync(dir)].map((e) => `${dir}/${e.name}`);
    const ran: string[] = JSON.parse(Deno.readTextFileSync(file))
      .filter((e: { cat: string; name: string }) =>
        e.cat === "Node" && e.name.endsWith("_kernel_time")
      )
      .map((e: { name: string }) => e.name.replace(/_kernel_time$/, ""));
    const at = (name: string) => {
      const i = ran.indexOf(name);
      assert.ok(i >= 0, `${name} did not run`);
      return i;
    };
    layers.forEach((layer, k) => {
      const sliced = at(`${layer.node}/infodiff_joint_block`);
      assert.ok(sliced > at(layer.node), `layer ${k} sliced before its softmax`);
      if (k + 1 < layers.length) {
        assert.ok(
          sliced < at(layers[k + 1].node),
          `layer ${k} sliced after layer ${k + 1}'s attention`,
        );
      }
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
