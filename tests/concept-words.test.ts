// Concept attention with extra concept words (issue 25, part 2): ConceptAttention's own use, where
// the user names the concepts ("sky", "dog") and each is streamed through the double-stream blocks
// beside the prompt without changing the image stream. The truths:
// - the prediction: the edited graph's output equals the unedited one's exactly (every original
//   node is left as exported), and the capability's ε̂ equals model.predictNoise's;
// - the maps: fixtures/attention/concept-words-reference.json, made by
//   tools/make_joint_attention_reference.py with ConceptAttention's diffusers FLUX code
//   (FluxTransformerBlockWithConceptAttention's concept part beside diffusers' own blocks,
//   encode_concepts' T5 and CLIP encodings) on the tiny FLUX.1 pipeline (one double-stream block)
//   and on a 3-double-block transformer (the stream carried from block to block). Tolerance 2·10⁻⁶
//   absolute on probabilities, as the joint-attention maps (fp32 ONNX against fp32 PyTorch);
// - each concept's map sums to 1 over the image tokens.
import assert from "node:assert/strict";
import { type StoredArray, storedValues, withLoadedModel } from "./helpers.ts";
import * as ort from "npm:onnxruntime-node@1.30.0";
import { InvalidArgumentError, ModelLoadError } from "../src/errors.ts";
import { flowLogSnr, flowScale } from "../src/models/flow.ts";
import {
  addConceptStream,
  addOutputSpaceMaps,
  readAttentionGraph,
} from "../src/models/onnx/attention-graph.ts";
import { type AttentionHost, OnnxCrossAttention } from "../src/models/onnx/cross-attention.ts";
import type { OnnxModel } from "../src/query/load-model.ts";
import {
  DaamAccumulator,
  sampledAttentionOptions,
  wordAttention,
  type WordAttentionOptions,
} from "../src/attention/word-attention.ts";
import { type AttentionProvider, MODEL_ATTENTION } from "../src/attention/provider.ts";
import { localizationStudy } from "../src/studies/localization.ts";
import type { LocalizationRow } from "../src/studies/localization-rows.ts";
import { modelDrawBlocks, noisyData } from "../src/estimators/draws.ts";
import { resolveOptions } from "../src/estimators/options.ts";
import type { NoiseBatch } from "../src/models/denoiser.ts";

const TOLERANCE = 2e-6;

type Stored = StoredArray;
interface ConceptLayer {
  readonly node: string;
  readonly dims: [number, number];
  readonly values: Stored;
}

const values = storedValues;

function withModel(name: string, body: (model: OnnxModel) => Promise<void> | void) {
  return withLoadedModel(`fixtures/models/${name}`, {}, body);
}

const reference = JSON.parse(
  await Deno.readTextFile("fixtures/attention/concept-words-reference.json"),
);

/**
 * The largest difference between the last `concepts` columns of each map [P, tokens] and the
 * reference's [P, C]; each concept's column must sum to 1 over the P image tokens.
 */
function conceptColumnsDifference(
  map: Float32Array,
  tokens: number,
  want: ConceptLayer,
): number {
  const [cells, concepts] = want.dims;
  const stored = values(want.values);
  let worst = 0;
  for (let c = 0; c < concepts; c++) {
    let sum = 0;
    for (let p = 0; p < cells; p++) {
      const got = map[p * tokens + tokens - concepts + c];
      sum += got;
      worst = Math.max(worst, Math.abs(got - stored[p * concepts + c]));
    }
    assert.ok(Math.abs(sum - 1) < 1e-5, `${want.node} concept ${c}: sums to ${sum}`);
  }
  return worst;
}

Deno.test("three double-stream blocks: the concept stream's maps equal ConceptAttention's, and the prediction is the unedited graph's, bit for bit", async () => {
  const ref = reference["three-blocks"];
  const path = "fixtures/attention/flux-three-blocks-transformer.onnx";
  const bytes = await Deno.readFile(path);
  const blocks = readAttentionGraph(bytes, path).outputSpace!;
  assert.deepEqual(blocks.map((b) => b.index), [0, 1, 2]);
  const streamed = addConceptStream(bytes, blocks, [
    { replaces: "encoder_hidden_states", name: "concept_hidden_states", conceptAxis: 1 },
    { replaces: "pooled_projections", name: "concept_pooled_projections" },
    { replaces: "txt_ids", name: "concept_ids", conceptAxis: 0 },
  ]);
  const edited = addOutputSpaceMaps(streamed.bytes, streamed.blocks);
  const tensor = (stored: Stored) => new ort.Tensor("float32", values(stored), stored.shape);
  const feeds = Object.fromEntries(
    Object.entries(ref.inputs as Record<string, Stored>).map(([name, s]) => [name, tensor(s)]),
  );
  const concepts = ref.concepts.concept_hidden_states.shape[1];
  const run = async (model: Uint8Array, extra: Record<string, ort.Tensor>) => {
    const session = await ort.InferenceSession.create(model);
    try {
      return await session.run({ ...feeds, ...extra });
    } finally {
      await session.release();
    }
  };
  const plain = await run(bytes, {});
  const result = await run(edited.bytes, {
    concept_hidden_states: tensor(ref.concepts.concept_hidden_states),
    concept_pooled_projections: tensor(ref.concepts.concept_pooled_projections),
    concept_ids: new ort.Tensor("float32", new Float32Array(concepts * 3), [concepts, 3]),
  });
  assert.deepEqual(result.out_hidden_states.data, plain.out_hidden_states.data);
  // and both are PyTorch's prediction (the exporter's own check is ≤ 4·10⁻⁶ relative)
  const torch = values(ref.output);
  (plain.out_hidden_states.data as Float32Array).forEach((v, i) =>
    assert.ok(Math.abs(v - torch[i]) < 1e-5, `output ${i}: ${v} vs PyTorch ${torch[i]}`)
  );
  assert.equal(edited.outputs.length, 3);
  edited.outputs.forEach((name, l) => {
    const map = result[name];
    const text = ref.inputs.encoder_hidden_states.shape[1];
    assert.deepEqual(map.dims, [1, 16, text + concepts]);
    const worst = conceptColumnsDifference(
      map.data as Float32Array,
      text + concepts,
      ref.layers[l],
    );
    assert.ok(worst <= TOLERANCE, `${ref.layers[l].node}: largest difference ${worst}`);
  });
});

/** The reference's x_t of tiny FLUX.1 as a batch of one, conditioned on the reference's prompt. */
async function referenceBatch(model: OnnxModel): Promise<NoiseBatch> {
  const ref = reference["tiny-flux"];
  const models = JSON.parse(await Deno.readTextFile("fixtures/models/tiny-flux/reference.json"));
  const level = models.levels[ref.level];
  const s = flowScale(level.t);
  return {
    noisy: values(level.x_t).map((x) => x / s),
    logSnr: new Float64Array([flowLogSnr(level.t)]),
    conditions: [await model.encode(ref.prompt)],
  };
}

Deno.test("tiny-flux: each concept word's map equals ConceptAttention's (T5 alone, 64 tokens, the first token; CLIP's pooled output of the words), the prediction and the prompt's maps unchanged", async () => {
  const ref = reference["tiny-flux"];
  await withModel("tiny-flux", async (model) => {
    const batch = await referenceBatch(model);
    const concept = model.conceptAttention!;
    const words = concept.withConcepts!(ref.concepts);
    assert.deepEqual(words.concepts, ref.concepts);
    assert.equal(words.contextLength, concept.contextLength + ref.concepts.length);
    const streamed = await words.predict(batch);
    const plain = await concept.predict(batch);
    assert.deepEqual(streamed.noise, await model.predictNoise(batch));
    assert.deepEqual(streamed.noise, plain.noise);
    const [layer] = streamed.layers[0];
    const [prompt] = plain.layers[0];
    assert.equal(layer.node, ref.layers[0].node);
    assert.deepEqual([layer.heads, layer.height * layer.width], [1, 16]);
    const worst = conceptColumnsDifference(layer.probs, layer.tokens, ref.layers[0]);
    assert.ok(worst <= TOLERANCE, `largest difference ${worst}`);
    // the prompt's token columns are the maps without words
    let moved = 0;
    for (let p = 0; p < 16; p++) {
      for (let t = 0; t < prompt.tokens; t++) {
        const diff = layer.probs[p * layer.tokens + t] - prompt.probs[p * prompt.tokens + t];
        moved = Math.max(moved, Math.abs(diff));
      }
    }
    assert.ok(moved <= 1e-6, `prompt tokens moved by ${moved}`);
  });
});

Deno.test("tiny-flux: wordAttention draws a named concept's map (concepts option), a concept before the prompt's word of the same name", async () => {
  await withModel("tiny-flux", async (model) => {
    const data = await model.prepare("fixtures/images/test-64.png");
    const prompt = "a small red circle";
    const concepts = ["sky", "circle"];
    const options = { samples: 1, seed: 3, maps: "concept" as const, concepts };
    // the one sampled draw wordAttention gathers at, through the capability
    const resolved = resolveOptions(model, sampledAttentionOptions(options));
    const [block] = [...modelDrawBlocks(model, resolved, resolved.batchSize)];
    const concept = model.conceptAttention!;
    const { layers } = await concept.withConcepts!(concepts).predict({
      noisy: noisyData(data, block),
      logSnr: block.logSnr,
      conditions: [await model.encode(prompt)],
    });
    for (const [word, index] of [["sky", 0], ["circle", 1]] as const) {
      const map = await wordAttention(model, data, prompt, word, options);
      // DAAM's aggregation of the concept's own token: after the prompt's T5 tokens
      const daam = new DaamAccumulator([concept.contextLength + index]);
      daam.add(layers[0]);
      const want = daam.heatmap(8, 8);
      map.data.forEach((v, i) => assert.ok(Math.abs(v - want.data[i]) < 1e-6, `${word} ${i}`));
    }
    // "red" is no concept: the prompt's tokens, as without concepts
    const red = await wordAttention(model, data, prompt, "red", options);
    const alone = await wordAttention(model, data, prompt, "red", {
      ...options,
      concepts: undefined,
    });
    red.data.forEach((v, i) => assert.ok(Math.abs(v - alone.data[i]) < 1e-5, `red ${i}`));
  });
});

Deno.test("extra concept words are refused, saying why: an empty list, a blank or repeated word, maps other than concept attention, a UNet, SD 3", async () => {
  await withModel("tiny-flux", async (model) => {
    const data = new Float32Array(16 * 8 * 8);
    const refused = (
      concepts: unknown,
      pattern: RegExp,
      maps: "concept" | "attention" = "concept",
    ) =>
      assert.rejects(
        () =>
          wordAttention(model, data, "a red circle", "red", {
            maps,
            concepts: concepts as string[],
          }),
        (error: Error) => error instanceof InvalidArgumentError && pattern.test(error.message),
      );
    await refused([], /non-empty list/);
    await refused(["sky", " "], /concept 1 is " "; expected a non-blank word/);
    await refused(["Sky", "sky"], /concepts 0 and 1 are both "sky"/);
    await refused(["sky"], /concepts are concept attention's/, "attention");
    assert.throws(
      () => model.attention.withConcepts?.(["sky"]) ?? assert.fail("joint attention took words"),
      InvalidArgumentError,
    );
  });
  await withModel("attention-tiny", async (model) => {
    await assert.rejects(
      () =>
        wordAttention(model, new Float32Array(3 * 8 * 8), "a red circle", "red", {
          maps: "concept",
          concepts: ["sky"],
        }),
      (error: Error) =>
        error instanceof InvalidArgumentError && /no concept-attention maps/.test(error.message),
    );
  });
  await withModel("tiny-sd3", async (model) => {
    const sd3 = (error: Error) =>
      error instanceof InvalidArgumentError &&
      /SD 3 code is another method than its FLUX code/.test(error.message);
    assert.throws(() => model.conceptAttention!.withConcepts!(["sky"]), sd3);
    // a study refuses them before any row runs (it used to fail every row), writing nothing
    const results = `${await Deno.makeTempDir()}/concepts.jsonl`;
    const row: LocalizationRow = {
      id: "circle",
      image: "fixtures/images/test-64.png",
      caption: "a small red circle",
      word: "circle",
      category: "circle",
      groundTruth: () => ({ mask: new Uint8Array(64 * 64).fill(1), width: 64, height: 64 }),
    };
    await assert.rejects(
      () =>
        localizationStudy(model, [row], {
          samples: 2,
          methods: ["concept-attention"],
          concepts: ["sky"],
          results,
        }),
      sd3,
    );
    await assert.rejects(() => Deno.stat(results), Deno.errors.NotFound);
  });
});

Deno.test("a fused transformer export streams no concept words: its fused nodes' copies are not checked", () => {
  // tiny SD 3 through onnxruntime's mmdit optimizer, behind a layout that would stream concepts
  const unetPath = "fixtures/attention/tiny-sd3-fused-transformer.onnx";
  const host = { unetPath } as unknown as AttentionHost;
  const layout = {
    order: "image-text" as const,
    textTokens: 333,
    imageTokens: 16,
    wordTokens: () => [],
    conceptStream: { inputs: [], encode: () => Promise.resolve(new Map()) },
  };
  const concept = new OnnxCrossAttention(host, layout, "concept");
  assert.throws(
    () => concept.withConcepts(["sky"]),
    (error: Error) =>
      error instanceof ModelLoadError && /fused attention .*MultiHeadAttention/.test(error.message),
  );
});

Deno.test("tiny-flux: localization's concept-attention streams each row's object and the study's concepts, ConceptAttention's protocol, and records them", async () => {
  await withModel("tiny-flux", async (model) => {
    const calls: WordAttentionOptions[] = [];
    const provider: AttentionProvider = {
      ...MODEL_ATTENTION,
      wordAttention: (m, data, prompt, word, options) => {
        calls.push(options);
        return MODEL_ATTENTION.wordAttention(m, data, prompt, word, options);
      },
    };
    const row: LocalizationRow = {
      id: "circle",
      image: "fixtures/images/test-64.png",
      caption: "a small red circle on the green grass",
      word: "Circle",
      category: "circle",
      groundTruth: () => ({
        mask: Uint8Array.from({ length: 64 * 64 }, (_, i) => (i % 64 < 32 ? 1 : 0)),
        width: 64,
        height: 64,
      }),
    };
    const results = `${await Deno.makeTempDir()}/concepts.jsonl`;
    const result = await localizationStudy(model, [row], {
      samples: 2,
      methods: ["concept-attention"],
      concepts: ["background", "circle", "grass"],
      attention: provider,
      keepMaps: true,
      results,
    });
    assert.equal(result.rows.length, 1, JSON.stringify(result.failures));
    assert.ok(result.maps("circle")?.conceptAttention);
    // the object first, once, then the other words
    assert.deepEqual(calls.map((c) => [c.maps, c.concepts]), [[
      "concept",
      ["circle", "background", "grass"],
    ]]);
    const header = JSON.parse((await Deno.readTextFile(results)).split("\n")[0]).settings;
    assert.deepEqual(header.concepts, ["background", "circle", "grass"]);
    await assert.rejects(
      () => localizationStudy(model, [row], { methods: ["information"], concepts: ["sky"] }),
      (error: Error) =>
        error instanceof InvalidArgumentError && /extra words of the concept-attention/.test(
          error.message,
        ),
    );
    await assert.rejects(
      () => localizationStudy(model, [row], { methods: ["concept-attention"], concepts: [""] }),
      InvalidArgumentError,
    );
  });
});
