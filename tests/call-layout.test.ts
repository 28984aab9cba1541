// How a query's items are laid out in model calls, and what the ONNX backend rewrites from call to
// call: a batch's rows keep their condition (so a network whose per-prompt conditioning is
// megabytes — SD 3's 5.4 MB, FLUX.1's 8.4 MB — rewrites only the rows whose condition changed),
// and the flow conversion writes x_t and ε̂ straight into the network's layout and output.
// Every number stays what row-by-row evaluation gives, bit for bit.
import assert from "node:assert/strict";
import { InferenceSession } from "onnxruntime-node";
import { blockLayout, callSchedule } from "../src/estimators/contrasts.ts";
import { type Condition, type NoiseBatch, withMembers } from "../src/models/denoiser.ts";
import { flowPredictNoise, flowScale, flowTime, noiseFromVelocity } from "../src/models/flow.ts";
import { fluxLayout, packLatents, unpackLatents } from "../src/models/onnx/flux-pipeline.ts";
import { OnnxUnet } from "../src/models/onnx/unet.ts";
import { NoiseSchedule } from "../src/models/sd/schedule.ts";
import { Random } from "../src/numerics/random.ts";
import { mixtureModel } from "../src/query/oracles.ts";
import { createModel } from "../src/query/model.ts";

/** Row changes of condition between consecutive calls (rows both calls have). */
function rowChanges(calls: readonly (readonly unknown[])[]): number {
  let changes = 0;
  for (let c = 1; c < calls.length; c++) {
    const rows = Math.min(calls[c].length, calls[c - 1].length);
    for (let r = 0; r < rows; r++) if (calls[c][r] !== calls[c - 1][r]) changes++;
  }
  return changes;
}

/** A block's calls as lists of each row's condition. */
function callConditions(slots: Int32Array, conditions: number, batchSize: number): number[][] {
  const calls: number[][] = [];
  slots.forEach((item, slot) =>
    (calls[Math.floor(slot / batchSize)] ??= []).push(item % conditions)
  );
  return calls;
}

Deno.test("blockLayout: every item once, in callSchedule's calls; rows change condition at most K − 1 times per block", () => {
  for (
    const [draws, K, batch] of [
      [8, 11, 8],
      [4, 6, 8],
      [8, 3, 8],
      [5, 11, 8],
      [3, 3, 2],
      [1, 9, 4],
      [7, 2, 32],
    ]
  ) {
    const N = draws * K;
    for (const reversed of [false, true]) {
      const slots = blockLayout(draws, K, batch, reversed);
      assert.deepEqual([...slots].sort((a, b) => a - b), Array.from({ length: N }, (_, i) => i));
      const calls = callConditions(slots, K, batch);
      // the calls callSchedule counts: full, the last perhaps part-full
      assert.equal(calls.length, Math.ceil(N / batch));
      calls.slice(0, -1).forEach((call) => assert.equal(call.length, batch));
      assert.ok(rowChanges(calls) <= K - 1, `${draws}×${K} at ${batch}: ${rowChanges(calls)}`);
    }
    // a reversed block starts where a forward one ended (when its calls are full)
    if (N % batch === 0) {
      const forward = callConditions(blockLayout(draws, K, batch), K, batch);
      const backward = callConditions(blockLayout(draws, K, batch, true), K, batch);
      assert.deepEqual(backward[0], forward.at(-1));
      assert.deepEqual(backward.at(-1), forward[0]);
    }
  }
  // a 10-word perToken at batch 8 (11 conditions, blocks of 8 draws, 11 calls): draw-major order
  // changed every row at every call, 80 rewrites per block; now 10
  const drawMajor = Array.from(
    { length: 11 },
    (_, c) => Array.from({ length: 8 }, (_, r) => (8 * c + r) % 11),
  );
  assert.equal(rowChanges(drawMajor), 80);
  assert.equal(rowChanges(callConditions(blockLayout(8, 11, 8), 11, 8)), 10);
});

Deno.test("a query's calls keep each row's condition from call to call; its numbers are batch 1's bit for bit", async () => {
  const mixture = mixtureModel({
    shape: [1, 2, 2],
    components: [
      { words: ["red", "big", "circle"], mean: [1, 0.5, 0, 0], variance: 0.3 },
      { words: ["blue", "small", "circle"], mean: [0, 0, 1, 0.5], variance: 0.3 },
      { words: ["red", "small", "square", "left"], mean: [0.5, 1, 0, 0.5], variance: 0.2 },
    ],
  });
  const calls: Condition[][] = [];
  const recording = createModel(withMembers(mixture, {
    predictNoise: (batch: NoiseBatch) => {
      calls.push([...batch.conditions]);
      return mixture.predictNoise(batch);
    },
  }));
  const prompt = "red small square left", samples = 40;
  const x = mixture.sample(prompt, { seed: 1 });
  const query = recording.info(x).given(prompt).samples(samples).seed(3);
  const batched = await query.batchSize(8).perToken();
  const K = new Set(calls.flat()).size; // the prompt, each word removed, ""
  const { blockSize, calls: scheduled } = callSchedule(samples, K, 8);
  assert.equal(calls.length, scheduled);
  assert.ok(calls.length > Math.ceil(samples / blockSize), "several calls per block");
  // at most K − 1 row changes per block, none from one block to the next (draw-major: 8 per call)
  const blocks = Math.ceil(samples / blockSize);
  assert.ok(rowChanges(calls) <= (K - 1) * blocks, `${rowChanges(calls)} row changes`);
  const single = await query.batchSize(1).perToken();
  assert.deepEqual(batched.rows(), single.rows());
  assert.deepEqual(batched.tokens.map((t) => t.map), single.tokens.map((t) => t.map));
});

const PATH = "fixtures/models/sd-vpred/unet/model.onnx";

Deno.test("a batch's conditioning is rewritten only in rows whose condition changed, when one batch fills the cache", async () => {
  const schedule = NoiseSchedule.fromConfig(
    JSON.parse(await Deno.readTextFile("fixtures/models/sd-vpred/scheduler/scheduler_config.json")),
  );
  const session = await InferenceSession.create(PATH);
  try {
    const unet = new OnnxUnet(session, PATH, schedule, 4);
    const width = unet.hiddenInput.shape[2] as number, size = 77 * width;
    unet.hiddenCacheBytes = 4 * size * 4; // one batch of 4 float32 rows
    const random = new Random(7);
    const states = Array.from({ length: 6 }, () => random.fillGaussian(new Float32Array(size)));
    const request = (order: number[]) => ({
      noisy: Float32Array.from({ length: order.length * 256 }, (_, j) => Math.sin(j)),
      timesteps: Int32Array.from(order, (k) => 100 * k + 7),
      hiddenStates: order.map((k) => states[k]),
      contextLength: 77,
    });
    // [A B C D] → [A B C E] → [A B F E]: 4 rows, then 1, then 1 (refilled from the previous
    // call's batch; before, from the one before it: 4, 4, 2)
    const orders = [[0, 1, 2, 3], [0, 1, 2, 4], [0, 1, 5, 4], [0, 1, 5, 4]];
    const written: number[] = [];
    for (const order of orders) {
      const before = unet.conditionRowsWritten;
      const noise = await unet.predict(request(order), [4, 8, 8]);
      written.push(unet.conditionRowsWritten - before);
      // a UNet that never ran: every row written fresh
      const fresh = new OnnxUnet(session, PATH, schedule, 4);
      assert.deepEqual(noise, await fresh.predict(request(order), [4, 8, 8]), `order ${order}`);
    }
    assert.deepEqual(written, [4, 1, 1, 0]);
  } finally {
    await session.release();
  }
});

Deno.test("flowPredictNoise in FLUX.1's layout: ε̂ of the packed network bit for bit, written over v̂, x_t in the scratch", async () => {
  const shape = [2, 4, 6] as const, d = 48, items = 3;
  const random = new Random(11);
  const batch = {
    noisy: random.fillGaussian(new Float32Array(items * d)),
    logSnr: Float64Array.of(-2.5, 0.3, 4),
    conditions: ["a", "b", "c"],
  };
  // a network of packed tokens: v̂ a fixed function of its input's values, positions and t
  const network = (packed: Float32Array, t: Float64Array) =>
    Float32Array.from(packed, (x, j) => Math.sin(3 * x + j) * t[Math.floor(j / d)]);
  // the earlier path: x_t in the latent layout, packed, the output unpacked, then ε̂
  const t = batch.logSnr.map(flowTime);
  const xt = Float32Array.from(batch.noisy, (x, j) => flowScale(t[Math.floor(j / d)]) * x);
  const v = unpackLatents(network(packLatents(xt, items, shape), t), items, shape);
  const expected = new Float32Array(items * d);
  for (let i = 0; i < items; i++) {
    const at = (a: Float32Array) => a.subarray(i * d, (i + 1) * d);
    noiseFromVelocity(at(xt), at(v), t[i], at(expected));
  }
  const taken: Float32Array[] = [];
  let fed: Float32Array | undefined, returned: Float32Array | undefined;
  const eps = await flowPredictNoise(batch, (flow) => {
    fed = flow.xt;
    returned = network(flow.xt, flow.t);
    return Promise.resolve(returned);
  }, {
    layout: fluxLayout(shape),
    scratch: (length) => {
      taken.push(new Float32Array(length));
      return taken.at(-1)!;
    },
  });
  assert.deepEqual(eps, expected);
  assert.equal(eps, returned, "ε̂ is written over the network's output");
  assert.equal(fed, taken[0], "x_t goes into the scratch");
  assert.deepEqual(taken.map((b) => b.length), [items * d, d]);
  // the latent layout: ε̂ over v̂ in place
  let plain: Float32Array | undefined;
  const same = await flowPredictNoise(batch, (flow) => {
    plain = Float32Array.from(flow.xt, (x) => Math.cos(x));
    return Promise.resolve(plain);
  });
  assert.equal(same, plain);
});
