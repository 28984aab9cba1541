/**
 * Attention baseline: graph editing against torch's own probabilities (truth.json of
 * tools/build_attention_fixture.py), external weights after editing, refusal of fused exports,
 * and DAAM-style word maps against the closed form of the fixture (its cross-attention depends on
 * the prompt only, so every noise level gives the same probabilities).
 */
import assert from "node:assert/strict";
import onnxProto from "onnx-proto";
import {
  addGraphOutputs,
  crossAttentionLayers,
  readAttentionGraph,
} from "../src/models/onnx/attention-graph.ts";
import { predictWithAttention, supportsAttention } from "../src/attention/capability.ts";
import { wordAttention } from "../src/attention/word-attention.ts";
import { InvalidArgumentError, ModelLoadError, PromptError } from "../src/errors.ts";
import { Heatmap } from "../src/images/heatmap.ts";
import { exampleOracle } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { sessionFactory } from "../src/models/onnx/session.ts";
import type { OnnxModel } from "../src/query/load-model.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { meanWithError } from "../src/numerics/statistics.ts";

const TINY = "fixtures/models/attention-tiny";
const EXTERNAL = "fixtures/models/attention-tiny-external";
const FUSED = "fixtures/models/attention-fused";
const NO_ATTENTION = "fixtures/models/sd-floatt-weightspb";

interface TruthLayer {
  node: string;
  size: number;
  /** [B·heads, HW, 77] or [B, heads, HW, 77] */
  dims: number[];
  probs: number[];
}
interface Truth {
  prompts: string[];
  inputIds: number[][];
  timesteps: number[];
  heads: number;
  keptPositions: number;
  sample: number[];
  outSample: number[];
  layers: TruthLayer[];
  selfAttentionNodes: string[];
}

const truth: Truth = JSON.parse(Deno.readTextFileSync(`${TINY}/truth.json`));
const load = (dir: string) => loadModel(dir, { device: "cpu", threads: 1 });

/** Torch's probability of item `item`, head `h`, cell `p`, token `t` (padding = last kept). */
function truthProb(layer: TruthLayer, item: number, h: number, p: number, t: number): number {
  const cells = layer.size * layer.size, k = truth.keptPositions;
  const row = item * truth.heads + h; // both layouts are batch-major, then heads
  return layer.probs[(row * cells + p) * k + Math.min(t, k - 1)];
}

/**
 * The truth of the fixture's DAAM map from torch's probabilities: per (layer, head, sub-token) the
 * map, bicubic to 8×8, clamped at 0; mean over the 4 (layer, head) pairs, then the sub-tokens.
 */
function expectedWordMap(item: number, positions: number[]): Heatmap {
  const total = new Float32Array(64);
  let pairs = 0;
  for (const layer of truth.layers) {
    const cells = layer.size * layer.size;
    for (let h = 0; h < truth.heads; h++) {
      for (const t of positions) {
        const map = new Heatmap(
          layer.size,
          layer.size,
          Float32Array.from({ length: cells }, (_, p) => truthProb(layer, item, h, p, t)),
        );
        const common = layer.size === 8 ? map : map.upsample(8, 8, { method: "bicubic" });
        common.data.forEach((v, i) => (total[i] += Math.max(0, v) / positions.length));
      }
      pairs++;
    }
  }
  return new Heatmap(8, 8, total.map((v) => v / pairs)).normalize();
}

/** Mean of a map over the columns [x0, x1) (all rows) or rows [y0, y1) (all columns). */
function regionMean(map: Heatmap, axis: "x" | "y", from: number, to: number): number {
  let sum = 0, count = 0;
  for (let y = 0; y < map.height; y++) {
    for (let x = 0; x < map.width; x++) {
      const c = axis === "x" ? x : y;
      if (c >= from && c < to) {
        sum += map.at(x, y);
        count++;
      }
    }
  }
  return sum / count;
}

async function checkAgainstTorch(model: OnnxModel): Promise<void> {
  const conditions = await Promise.all(truth.prompts.map((p) => model.encode(p)));
  conditions.forEach((c, i) => assert.deepEqual([...c.inputIds], truth.inputIds[i]));
  const logSnr = Float64Array.from(truth.timesteps, (t) => model.schedule!.logSnr[t]);
  const { noise, layers } = await predictWithAttention(model, {
    noisy: Float32Array.from(truth.sample),
    logSnr,
    conditions,
  });
  noise.forEach((v, i) => assert.ok(Math.abs(v - truth.outSample[i]) < 1e-5, `out_sample ${i}`));
  assert.equal(layers.length, 2);
  for (const [item, itemLayers] of layers.entries()) {
    assert.deepEqual(itemLayers.map((l) => l.node), truth.layers.map((l) => l.node));
    // one layer of each layout: diffusers' AttnProcessor and decomposed scaled_dot_product_attention
    assert.deepEqual(truth.layers.map((l) => l.dims.length), [3, 4]);
    for (const [l, layer] of itemLayers.entries()) {
      const expected = truth.layers[l];
      assert.deepEqual(
        [layer.heads, layer.height, layer.width, layer.tokens],
        [truth.heads, expected.size, expected.size, 77],
      );
      const cells = layer.height * layer.width;
      let worst = 0;
      for (let h = 0; h < layer.heads; h++) {
        for (let p = 0; p < cells; p++) {
          for (let t = 0; t < 77; t++) {
            const got = layer.probs[(h * cells + p) * 77 + t];
            worst = Math.max(worst, Math.abs(got - truthProb(expected, item, h, p, t)));
          }
        }
      }
      assert.ok(worst < 1e-5, `layer ${l} item ${item}: max |Δ| = ${worst}`);
    }
  }
}

Deno.test("the edited UNet returns every attn2 Softmax output, equal to torch's probabilities, and the same out_sample", async () => {
  const model = await load(TINY);
  try {
    assert.ok(supportsAttention(model));
    await checkAgainstTorch(model);
    // the plain UNet is untouched by the edit
    assert.equal(model.stats.unetCalls, 0);
  } finally {
    await model.dispose();
  }
});

Deno.test("external-weight UNets still load after editing: weights are read from the original folder", async () => {
  const path = `${EXTERNAL}/unet/model.onnx`;
  const graph = readAttentionGraph(Deno.readFileSync(path), path);
  assert.ok(graph.externalData);
  const model = await load(EXTERNAL);
  try {
    assert.ok(supportsAttention(model));
    await checkAgainstTorch(model);
  } finally {
    await model.dispose();
  }
  // nothing was written next to the model
  assert.deepEqual([...Deno.readDirSync(`${EXTERNAL}/unet`)].map((e) => e.name).sort(), [
    "model.onnx",
    "model.onnx_data",
  ]);
});

Deno.test("edited copies of the weights.pb and model.onnx_data fixtures open with their external weights", async () => {
  const factory = sessionFactory({ device: "cpu", threads: 1 });
  for (
    const dir of ["fixtures/models/sd-floatt-weightspb", "fixtures/models/sd-scalart-onnxdata"]
  ) {
    const path = `${dir}/unet/model.onnx`;
    const bytes = Deno.readFileSync(path);
    assert.ok(readAttentionGraph(bytes, path).externalData);
    const model = onnxProto.onnx.ModelProto.decode(bytes);
    const inner = model.graph!.node![0].output![0];
    const session = await factory.createFromBytes(addGraphOutputs(bytes, [inner]), path);
    try {
      assert.ok(session.outputNames.includes(inner));
    } finally {
      await session.release();
    }
  }
});

Deno.test("the edit only appends outputs: every original byte and external_data entry is kept", () => {
  const path = `${EXTERNAL}/unet/model.onnx`;
  // an unknown top-level field (number 99, varint 5) must survive, as fields newer than onnx-proto would
  const original = new Uint8Array([...Deno.readFileSync(path), 0x98, 0x06, 0x05]);
  const graph = readAttentionGraph(original, path);
  assert.deepEqual(graph.layers.map((l) => l.node), truth.layers.map((l) => l.node));
  assert.ok(!graph.layers.some((l) => truth.selfAttentionNodes.includes(l.node)));
  const names = graph.layers.map((l) => l.output);
  const edited = addGraphOutputs(original, names);
  assert.deepEqual([...edited.subarray(edited.length - 3)], [0x98, 0x06, 0x05]);
  const before = onnxProto.onnx.ModelProto.decode(original);
  const after = onnxProto.onnx.ModelProto.decode(edited);
  assert.deepEqual(after.graph!.output!.map((o) => o.name), ["out_sample", ...names]);
  assert.equal(after.graph!.node!.length, before.graph!.node!.length);
  const locations = (m: typeof before) =>
    m.graph!.initializer!.map((t) => JSON.stringify(t.externalData));
  assert.deepEqual(locations(after), locations(before));
  // adding the same outputs again changes nothing but the graph field's framing
  const twice = onnxProto.onnx.ModelProto.decode(addGraphOutputs(edited, names));
  assert.equal(twice.graph!.output!.length, 3);
});

Deno.test("a fused-attention export is refused with how to export an unfused one; a UNet without attn2 too", async () => {
  const model = await load(FUSED);
  try {
    assert.ok(!supportsAttention(model));
    // the model itself works: only attention maps are refused
    const condition = await model.encode("a red circle");
    const eps = await model.predictNoise({
      noisy: new Float32Array(192),
      logSnr: new Float64Array([0]),
      conditions: [condition],
    });
    assert.equal(eps.length, 192);
    await assert.rejects(
      () => wordAttention(model, new Float32Array(192), "a red circle", "red", { samples: 1 }),
      (error: Error) =>
        error instanceof ModelLoadError && /fused attention/.test(error.message) &&
        /MultiHeadAttention/.test(error.message) && /torch\.onnx\.export/.test(error.message),
    );
  } finally {
    await model.dispose();
  }
  const plain = await load(NO_ATTENTION);
  try {
    assert.ok(!supportsAttention(plain));
    const path = `${NO_ATTENTION}/unet/model.onnx`;
    assert.throws(
      () => crossAttentionLayers(readAttentionGraph(Deno.readFileSync(path), path)),
      (error: Error) => error instanceof ModelLoadError && /no Softmax node/.test(error.message),
    );
  } finally {
    await plain.dispose();
  }
});

Deno.test("wordAttention equals the fixture's closed form at sampled α and along the DDIM regeneration, and concentrates where the keys point", async () => {
  const model = await load(TINY);
  try {
    const data = Float32Array.from(truth.sample.slice(0, 192));
    const cases = [
      { item: 0, word: "red", position: 2, axis: "x" as const, high: "end" },
      { item: 0, word: "circle", position: 3, axis: "y" as const, high: "end" },
      { item: 1, word: "Blue", position: 2, axis: "x" as const, high: "start" },
      { item: 1, word: "square", position: 3, axis: "y" as const, high: "start" },
    ];
    for (const c of cases) {
      const expected = expectedWordMap(c.item, [c.position]);
      const prompt = truth.prompts[c.item];
      const sampled = await wordAttention(model, data, prompt, c.word, { samples: 5, seed: 3 });
      const trajectory = await wordAttention(model, data, prompt, c.word, {
        at: "regeneration",
        steps: 4,
      });
      for (const map of [sampled, trajectory]) {
        assert.equal(map.width, 8);
        assert.equal(map.height, 8);
        const worst = Math.max(...map.data.map((v, i) => Math.abs(v - expected.data[i])));
        assert.ok(worst < 1e-4, `${c.word}: max |Δ| = ${worst}`);
        assert.equal(map.min(), 0);
        assert.equal(map.max(), 1);
        const start = regionMean(map, c.axis, 0, 4), end = regionMean(map, c.axis, 4, 8);
        const [high, low] = c.high === "end" ? [end, start] : [start, end];
        assert.ok(high > 0.6 && low < 0.25, `${c.word}: ${high} vs ${low}`);
      }
    }
  } finally {
    await model.dispose();
  }
});

Deno.test("supportsAttention is false on the oracle, whose wordAttention is refused", async () => {
  const oracle = exampleOracle();
  assert.equal(supportsAttention(oracle), false);
  await assert.rejects(
    () => wordAttention(oracle, new Float32Array(768), "a red circle", "red"),
    InvalidArgumentError,
  );
});

Deno.test("a word that is not in the prompt is a PromptError naming the prompt's words", async () => {
  const model = await load(TINY);
  try {
    await assert.rejects(
      () => wordAttention(model, new Float32Array(192), "a red circle", "green", { samples: 1 }),
      (error: Error) =>
        error instanceof PromptError && /"green" is not in the prompt/.test(error.message) &&
        /a, red, circle/.test(error.message),
    );
    await assert.rejects(
      () => wordAttention(model, new Float32Array(10), "a red circle", "red", { samples: 1 }),
      /Float32Array of 192 values/,
    );
  } finally {
    await model.dispose();
  }
});

const SHAPES_TINY = "fixtures/models/shapes-tiny";
const shapesTinyExists = (() => {
  try {
    return Deno.statSync(`${SHAPES_TINY}/unet/model.onnx`).isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name:
    "shapes-tiny: a colour word's attention falls on its object's mask more than a uniform map's",
  ignore: !shapesTinyExists,
  fn: async () => {
    const model = await load(SHAPES_TINY);
    try {
      assert.ok(supportsAttention(model));
      const world = shapesWorld({ seed: 1, count: 24, split: "test" });
      const gains: number[] = [], masses: number[] = [], areas: number[] = [], ious: number[] = [];
      for (const scene of world.scenes) {
        const words = scene.caption.split(" ");
        for (const object of scene.objects) {
          // wordAttention reads a word's first occurrence: keep colours named once
          if (words.filter((w) => w === object.colour).length !== 1) continue;
          const map = await wordAttention(model, scene.toData(), scene.caption, object.colour, {
            samples: 8,
            seed: 1,
          });
          assert.equal(map.width, scene.size);
          let inside = 0, area = 0, intersection = 0, union = 0;
          map.data.forEach((v, i) => {
            const m = object.mask[i], on = v >= 0.4 ? 1 : 0;
            inside += m * v;
            area += m;
            intersection += m & on;
            union += m | on;
          });
          const mass = inside / map.sum(), fraction = area / map.data.length;
          masses.push(mass);
          areas.push(fraction);
          gains.push(mass - fraction);
          ious.push(intersection / union);
        }
      }
      const gain = meanWithError(gains);
      const iouGain = meanWithError(ious.map((iou, i) => iou - areas[i]));
      const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
      console.log(
        `shapes-tiny colour attention over ${gains.length} objects: mass in mask ` +
          `${mean(masses).toFixed(3)} vs uniform ${mean(areas).toFixed(3)} ` +
          `(gain ${gain.mean.toFixed(3)} ± ${gain.se.toFixed(3)}); IoU@0.4 ${
            mean(ious).toFixed(3)
          } ` +
          `vs whole image ${mean(areas).toFixed(3)} (gain ${iouGain.mean.toFixed(3)} ± ` +
          `${iouGain.se.toFixed(3)})`,
      );
      assert.ok(gains.length >= 10, `only ${gains.length} objects`);
      assert.ok(gain.mean > 3 * gain.se, `gain ${gain.mean} ± ${gain.se}`);
    } finally {
      await model.dispose();
    }
  },
});

Deno.test("DAAM's aggregation: mid block and 8×-coarser maps skipped, bicubic maps clamped at 0, heads then sub-tokens averaged", async () => {
  const { DaamAccumulator } = await import("../src/attention/word-attention.ts");
  // data grid 8×8; a 4×4 layer with 2 heads and 3 tokens, a mid-block 8×8 layer, a 1×1 layer
  const probsOf = (
    heads: number,
    cells: number,
    tokens: number,
    f: (h: number, p: number, t: number) => number,
  ) => {
    const out = new Float32Array(heads * cells * tokens);
    for (let h = 0; h < heads; h++) {
      for (let p = 0; p < cells; p++) {
        for (let t = 0; t < tokens; t++) out[(h * cells + p) * tokens + t] = f(h, p, t);
      }
    }
    return out;
  };
  // a sharp peak: bicubic upsampling overshoots below 0 around it
  const down = {
    node: "/down_blocks.1/attentions.0/transformer_blocks.0/attn2/Softmax",
    heads: 2,
    height: 4,
    width: 4,
    tokens: 3,
    probs: probsOf(
      2,
      16,
      3,
      (h, p, t) => (t === 1 && p === 5 + h ? 1 : t === 2 && p === 10 ? 0.5 : 0),
    ),
  };
  const mid = {
    node: "/mid_block/attentions.0/transformer_blocks.0/attn2/Softmax",
    heads: 1,
    height: 8,
    width: 8,
    tokens: 3,
    probs: probsOf(1, 64, 3, () => 7),
  };
  const coarse = {
    node: "/down_blocks.3/attentions.0/transformer_blocks.0/attn2/Softmax",
    heads: 1,
    height: 1,
    width: 1,
    tokens: 3,
    probs: probsOf(1, 1, 3, () => 9),
  };
  const daam = new DaamAccumulator([1, 2]);
  daam.add([down, mid, coarse]);
  daam.add([down, mid, coarse]); // two gathered items: the mean is the same map
  const got = daam.heatmap(8, 8);
  // by hand: per (head, token) the 4×4 map, bicubic to 8×8, clamped; mean over 2 heads, 2 tokens
  const total = new Float32Array(64);
  let negative = false;
  for (let h = 0; h < 2; h++) {
    for (const t of [1, 2]) {
      const map = new Heatmap(
        4,
        4,
        Float32Array.from({ length: 16 }, (_, p) => down.probs[(h * 16 + p) * 3 + t]),
      );
      const up = map.upsample(8, 8, { method: "bicubic" });
      up.data.forEach((v, i) => {
        if (v < 0) negative = true;
        total[i] += Math.max(0, v) / 4;
      });
    }
  }
  assert.ok(negative, "the case exercises the clamp");
  const expected = new Heatmap(8, 8, total).normalize();
  const worst = Math.max(...got.data.map((v, i) => Math.abs(v - expected.data[i])));
  assert.ok(worst < 1e-6, `max |Δ| = ${worst}`);
  const onlySkipped = new DaamAccumulator([1]);
  onlySkipped.add([mid, coarse]);
  assert.throws(() => onlySkipped.heatmap(8, 8), /mid block or 8× coarser/);
});

// ---------------------------------------------------------------------------------------------
// Issue 23 (c, d): where the reference gathers DAAM. Known truths, from the reference code:
// - "Attention+Information" (Info-Decomp `eval_daam_itd.py` 418–427): `logistic_integrate(50,
//   loc=1, scale=2, clip=3)` — 50 i.i.d. α from the logistic(1, 2) truncated at ±3, one ε each
//   (`noisy_channel`), every UNet call traced and summed without weights;
// - "Attention" (`eval_daam.py` 418–433): `forward_diffusion` (the 50-step DDIM inversion) runs
//   outside `trace`, and only `backward_diffusion` (the regeneration from its x_T) is traced.
// The recording fake (tests/attention-fake.ts) says which calls were gathered.

const SIGMOID = (x: number) => 1 / (1 + Math.exp(-x));
/** CDF of the logistic(1, 2) truncated at ±3, α ∈ [−5, 7]. */
const referenceCdf = (alpha: number) =>
  (SIGMOID((alpha - 1) / 2) - SIGMOID(-3)) / (SIGMOID(3) - SIGMOID(-3));

Deno.test("attention at sampled noise: 50 i.i.d. α from the logistic(1, 2, clip 3), one ε each, summed without weights", async () => {
  const { recordingAttentionModel, callItems, expectedRawMap } = await import(
    "./attention-fake.ts"
  );
  const { model, calls } = recordingAttentionModel();
  const data = Float32Array.from({ length: 16 }, (_, p) => (p % 4 < 2 ? 1 : -1));
  const map = await wordAttention(model, data, "a red circle", "red", {
    seed: 4,
    normalize: false,
  });
  assert.ok(calls.every((c) => c.kind === "attention"));
  const items = callItems(calls);
  assert.equal(items.length, 50);
  // i.i.d.: every draw its own α, inside the reference's interval [−5, 7] (the fake's trained
  // range is [−8, 8]: a range-fitted law would reach beyond it)
  assert.equal(new Set(items.map((i) => i.logSnr)).size, 50);
  assert.ok(items.every((i) => i.logSnr >= -5 && i.logSnr <= 7), items.map((i) => i.logSnr).join());
  // one ε each, not antithetic pairs: ε = (z − √σ(α)·x)/√σ(−α)
  const eps = items.map((i) =>
    Array.from(
      i.noisy,
      (z, p) => (z - Math.sqrt(SIGMOID(i.logSnr)) * data[p]) / Math.sqrt(SIGMOID(-i.logSnr)),
    )
  );
  assert.ok(eps[1].some((e, p) => Math.abs(e + eps[0][p]) > 1e-3), "draw 1 is not −ε of draw 0");
  // the raw map is the plain mean over the 50 gathered calls: no importance weights
  const expected = expectedRawMap(items.map((i) => i.noisy));
  const worst = Math.max(...map.data.map((v, p) => Math.abs(v - expected.data[p])));
  assert.ok(worst < 1e-6, `max |Δ| = ${worst}`);

  // the law: Kolmogorov–Smirnov against the truncated logistic's closed-form CDF, 4,000 draws
  calls.length = 0;
  await wordAttention(model, data, "a red circle", "red", { seed: 9, samples: 4000 });
  const alphas = callItems(calls).map((i) => i.logSnr).sort((a, b) => a - b);
  assert.equal(alphas.length, 4000);
  let ks = 0;
  alphas.forEach((a, k) => {
    const f = referenceCdf(a);
    ks = Math.max(ks, Math.abs(f - k / alphas.length), Math.abs(f - (k + 1) / alphas.length));
  });
  // 1.95/√n: the 0.1 % critical value
  assert.ok(ks < 1.95 / Math.sqrt(alphas.length), `KS distance ${ks}`);
});

Deno.test("attention at sampled noise follows other draws only when asked: the estimator's design and law", async () => {
  const { recordingAttentionModel, callItems } = await import("./attention-fake.ts");
  const { model, calls } = recordingAttentionModel();
  const data = new Float32Array(16);
  await wordAttention(model, data, "a red circle", "red", {
    seed: 2,
    samples: 8,
    draws: { design: "stratified-antithetic" },
  });
  const items = callItems(calls);
  assert.equal(items.length, 8);
  // the schedule-aware logistic of the fake's range [−8, 8] at clip 3, one α per antithetic pair,
  // one per quantile stratum of 4
  const alphas = items.map((i) => i.logSnr);
  for (let g = 0; g < 4; g++) {
    assert.equal(alphas[2 * g], alphas[2 * g + 1]);
    const u = (SIGMOID(alphas[2 * g] / (16 / 6)) - SIGMOID(-3)) / (SIGMOID(3) - SIGMOID(-3));
    assert.ok(u >= g / 4 - 1e-12 && u < (g + 1) / 4 + 1e-12, `α ${alphas[2 * g]} in stratum ${g}`);
  }
  await assert.rejects(
    () => wordAttention(model, data, "a red circle", "red", { draws: "mine" as never }),
    /attention draws must be "reference" or estimator options/,
  );
});

Deno.test("attention along the regeneration: the traced calls are the DDIM regeneration's, after an untraced inversion", async () => {
  const { recordingAttentionModel, callItems, expectedRawMap } = await import(
    "./attention-fake.ts"
  );
  const { ddimBatch } = await import("../src/generation/ddim.ts");
  const prompt = "a red circle", steps = 10;
  const data = Float32Array.from({ length: 16 }, (_, p) => (p % 4 < 2 ? 0.9 : -0.9));
  // the reference run: DDIM inversion, then the regeneration from its x_T, nothing traced
  const plain = recordingAttentionModel();
  const [xT] = await ddimBatch(plain.model, [{ prompt, start: data }], "invert", { steps });
  await ddimBatch(plain.model, [{ prompt, start: xT }], "generate", { steps });
  const inversion = plain.calls.slice(0, steps), regeneration = plain.calls.slice(steps);
  assert.equal(regeneration.length, steps);
  const same = (got: typeof plain.calls, want: typeof plain.calls) => {
    assert.equal(got.length, want.length);
    got.forEach((c, k) => {
      assert.deepEqual(c.logSnr, want[k].logSnr, `call ${k}`);
      assert.deepEqual(c.noisy, want[k].noisy, `call ${k}`);
    });
  };

  const traced = recordingAttentionModel();
  const map = await wordAttention(traced.model, data, prompt, "red", {
    at: "regeneration",
    steps,
    normalize: false,
  });
  // the inversion's calls went to predictNoise, then the regeneration's through attention
  assert.deepEqual(
    traced.calls.map((c) => c.kind),
    [...Array(steps).fill("noise"), ...Array(steps).fill("attention")],
  );
  same(traced.calls.slice(0, steps), inversion);
  same(traced.calls.slice(steps), regeneration);
  // the regeneration runs from the noisiest level down
  assert.ok(regeneration[0].logSnr[0] < regeneration[steps - 1].logSnr[0]);
  const expected = expectedRawMap(callItems(regeneration).map((i) => i.noisy));
  const worst = Math.max(...map.data.map((v, p) => Math.abs(v - expected.data[p])));
  assert.ok(worst < 1e-6, `max |Δ| = ${worst}`);

  // "inversion" traces the inversion itself, and nothing else runs
  const alongInversion = recordingAttentionModel();
  await wordAttention(alongInversion.model, data, prompt, "red", { at: "inversion", steps });
  assert.ok(alongInversion.calls.every((c) => c.kind === "attention"));
  same(alongInversion.calls, inversion);
  await assert.rejects(
    () => wordAttention(traced.model, data, prompt, "red", { at: "trajectory" as never }),
    /unknown attention gathering at: "trajectory"; expected one of sampled, regeneration, inversion/,
  );
});

Deno.test("a traced run given as trace gathers only the items conditioned on the prompt, in the calls that run anyway", async () => {
  const { recordingAttentionModel, callItems, expectedRawMap } = await import(
    "./attention-fake.ts"
  );
  const { model, calls } = recordingAttentionModel();
  const data = new Float32Array(16).fill(0.5);
  const map = await wordAttention(model, data, "a red circle", "red", {
    at: "regeneration",
    normalize: false,
    // two prompts in every call; only "a red circle"'s items are gathered
    trace: async (traced) => {
      const d = 16;
      for (const logSnr of [-2, 0, 3]) {
        const [red, blue] = await Promise.all(
          ["a red circle", "a blue circle"].map((p) => traced.encode(p)),
        );
        await traced.predictNoise({
          noisy: Float32Array.from({ length: 2 * d }, (_, j) => (j < d ? logSnr : -logSnr)),
          logSnr: new Float64Array([logSnr, logSnr]),
          conditions: [red, blue],
        });
      }
      // a call without the prompt is the model's own
      await traced.predictNoise({
        noisy: new Float32Array(d),
        logSnr: new Float64Array([1]),
        conditions: [await traced.encode("a blue circle")],
      });
    },
  });
  assert.deepEqual(calls.map((c) => c.kind), ["attention", "attention", "attention", "noise"]);
  const gathered = callItems(calls.slice(0, 3)).filter((i) => i.prompt === "a red circle");
  const expected = expectedRawMap(gathered.map((i) => i.noisy));
  const worst = Math.max(...map.data.map((v, p) => Math.abs(v - expected.data[p])));
  assert.ok(worst < 1e-6, `max |Δ| = ${worst}`);
});
