// Packing several rows' noise predictions into one model call: the calls are full, every item
// gets the prediction a call of its own gives, failures reach the requests they concern, and a
// study run with rows in flight gives exactly the numbers of a row-by-row run.
import assert from "node:assert/strict";
import { packCalls } from "../src/models/packed-calls.ts";
import { type Denoiser, type NoiseBatch, withMembers } from "../src/models/denoiser.ts";
import { ModelRuntimeError } from "../src/errors.ts";
import { exampleOracle, shapesOracle } from "../src/query/oracles.ts";
import { loadModel } from "../src/query/load-model.ts";
import { shapesWorld } from "../src/datasets/shapes/world.ts";
import { shapesLocalizationRows } from "../src/studies/localization-rows.ts";
import { localizationStudy } from "../src/studies/localization.ts";
import { relationStudy } from "../src/studies/relations.ts";
import { pidStudy } from "../src/studies/pid-study.ts";
import { Random } from "../src/numerics/random.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { readAro } from "../src/datasets/aro.ts";
import { join } from "node:path";

/** The model, with every call's size recorded. */
function counted(model: Denoiser): { model: Denoiser; sizes: number[] } {
  const sizes: number[] = [];
  const predictNoise = (batch: NoiseBatch) => {
    sizes.push(batch.logSnr.length);
    return model.predictNoise(batch);
  };
  return { model: withMembers(model, { predictNoise }), sizes };
}

async function randomBatch(model: Denoiser, size: number, seed: number): Promise<NoiseBatch> {
  const random = new Random(seed);
  const d = model.shape[0] * model.shape[1] * model.shape[2];
  const prompts = ["", "a red circle on the left", "a blue square"];
  const conditions = await Promise.all(
    Array.from({ length: size }, (_, i) => model.encode(prompts[(seed + i) % 3])),
  );
  const logSnr = Float64Array.from({ length: size }, () => random.uniform() * 8 - 4);
  return { noisy: random.fillGaussian(new Float32Array(size * d)), logSnr, conditions };
}

Deno.test("packCalls: concurrent requests go out in full calls, each item's prediction exact", async () => {
  const oracle = exampleOracle();
  const { model, sizes } = counted(oracle);
  const packed = packCalls(model, 4);
  const batches = await Promise.all([0, 1, 2, 3, 4].map((s) => randomBatch(oracle, 3, s + 1)));
  const outputs = await Promise.all(batches.map((b) => packed.predictNoise(b)));
  // 5 requests of 3 items at batch 4: 15 items in calls of 4, 4, 4 and the remaining 3
  assert.deepEqual(sizes, [4, 4, 4, 3]);
  assert.deepEqual(packed.packingStats(), { requests: 5, calls: 4, items: 15 });
  for (const [i, batch] of batches.entries()) {
    assert.deepEqual(outputs[i], await oracle.predictNoise(batch), `request ${i}`);
  }
});

Deno.test("packCalls: a request that arrives while a call runs waits for the next call", async () => {
  const oracle = exampleOracle();
  // the first call is held open until released, so the later requests surely arrive during it
  let release = () => {};
  const gate = new Promise<void>((resolve) => release = resolve);
  let calls = 0;
  const held = withMembers(oracle, {
    predictNoise: async (batch: NoiseBatch) => {
      if (++calls === 1) await gate;
      return oracle.predictNoise(batch);
    },
  });
  const { model, sizes } = counted(held);
  const packed = packCalls(model, 8);
  const [one, three, four] = await Promise.all([
    randomBatch(oracle, 2, 1),
    randomBatch(oracle, 3, 3),
    randomBatch(oracle, 3, 4),
  ]);
  const first = packed.predictNoise(one);
  await new Promise((resolve) => setTimeout(resolve, 0)); // the first call has gone out alone
  const later = [three, four].map((b) => packed.predictNoise(b));
  release();
  await first;
  assert.equal((await Promise.all(later)).length, 2);
  assert.deepEqual(sizes, [2, 6]);
});

Deno.test("packCalls: a failing call rejects the requests it carried, not the others", async () => {
  const oracle = exampleOracle();
  let calls = 0;
  const flaky = withMembers(oracle, {
    predictNoise: (batch: NoiseBatch) =>
      ++calls === 1
        ? Promise.reject(new ModelRuntimeError("the GPU fell over"))
        : oracle.predictNoise(batch),
  });
  const packed = packCalls(flaky, 4);
  const batches = await Promise.all([1, 2, 3].map((s) => randomBatch(oracle, 2, s)));
  const settled = await Promise.allSettled(batches.map((b) => packed.predictNoise(b)));
  // the first call carried requests 0 and 1; request 2 went in the second call
  assert.deepEqual(settled.map((s) => s.status), ["rejected", "rejected", "fulfilled"]);
  assert.match(String((settled[0] as PromiseRejectedResult).reason), /GPU fell over/);
  assert.deepEqual(
    (settled[2] as PromiseFulfilledResult<Float32Array>).value,
    await oracle.predictNoise(batches[2]),
  );
});

Deno.test("packCalls: scalar-timestep models are passed through; a bad request is refused", async () => {
  const oracle = exampleOracle();
  const scalar = withMembers(oracle, { sharedLogSnr: true });
  const { model, sizes } = counted(scalar);
  const packed = packCalls(model, 8);
  await Promise.all([1, 2].map(async (s) => packed.predictNoise(await randomBatch(oracle, 2, s))));
  assert.deepEqual(sizes, [2, 2]);
  const bad = await randomBatch(oracle, 2, 1);
  await assert.rejects(
    packCalls(oracle, 4).predictNoise({ ...bad, noisy: bad.noisy.subarray(1) }),
    /expected one condition and \d+ values per item/,
  );
  assert.throws(() => packCalls(oracle, 0), /batchSize must be a positive integer/);
});

// One-object scenes of the shapes world, as in the localization tests.
const world = shapesWorld({ seed: 3, count: 20, maxObjects: 1 });
const rows = shapesLocalizationRows(world).slice(0, 12);

Deno.test("localizationStudy: rows in flight pack calls and change no number (exact oracle)", async () => {
  const options = { samples: 10, batchSize: 8, seed: 5, methods: ["information"] } as const;
  const alone = counted(shapesOracle(world));
  const one = await localizationStudy(alone.model, rows, { ...options, rowsInFlight: 1 });
  const packed = counted(shapesOracle(world));
  const four = await localizationStudy(packed.model, rows, { ...options, rowsInFlight: 4 });
  assert.deepEqual(four.toJSON().rows, one.toJSON().rows);
  // per row: 10 draws × 2 conditions in blocks of 4 draws: calls of 8, 8 and 4 items
  assert.equal(alone.sizes.length, 3 * rows.length);
  assert.deepEqual(new Set(alone.sizes), new Set([8, 4]));
  // packed: 240 items in 30 full calls
  assert.equal(packed.sizes.reduce((a, b) => a + b, 0), 240);
  assert.equal(packed.sizes.length, 30);
});

Deno.test("studies on shapes-tiny (ONNX): packed rows give the numbers of row-by-row", async () => {
  const model = await loadModel("fixtures/models/shapes-tiny", { device: "cpu" });
  try {
    const options = { samples: 12, seed: 2, methods: ["information"] } as const;
    const one = await localizationStudy(model, rows.slice(0, 6), { ...options, rowsInFlight: 1 });
    const four = await localizationStudy(model, rows.slice(0, 6), { ...options, rowsInFlight: 4 });
    assertClose(four.toJSON().rows, one.toJSON().rows);
    const dir = await Deno.makeTempDir();
    await exportShapesDataset(shapesWorld({ seed: 5, count: 8, maxObjects: 2 }), dir);
    const items = (await readAro(join(dir, "aro_attribution.json"))).slice(0, 4);
    const r1 = await relationStudy(model, items, { samples: 12, rowsInFlight: 1 });
    const r4 = await relationStudy(model, items, { samples: 12, rowsInFlight: 3 });
    assertClose(r4.toJSON(), r1.toJSON());
    const pidRows = world.scenes.slice(0, 3).map((scene) => {
      const [, colour, shape] = scene.caption.split(" ");
      return { image: scene.toData(), prompt: scene.caption, wordA: colour, wordB: shape };
    });
    const p1 = await pidStudy(model, pidRows, { samples: 8, resamples: 20, rowsInFlight: 1 });
    const p4 = await pidStudy(model, pidRows, { samples: 8, resamples: 20, rowsInFlight: 3 });
    assertClose(p4.toJSON(), p1.toJSON());
  } finally {
    await model.dispose();
  }
});

/**
 * Equal structure and numbers equal to float32 rounding: onnxruntime's CPU kernels may sum in a
 * different order for a different batch size, so a packed call can move the last bit.
 */
function assertClose(actual: unknown, expected: unknown, path = "$"): void {
  if (typeof expected === "number" && typeof actual === "number") {
    if (Number.isNaN(expected)) return assert.ok(Number.isNaN(actual), `${path}: ${actual} vs NaN`);
    const scale = Math.max(1, Math.abs(expected));
    assert.ok(Math.abs(actual - expected) <= 1e-5 * scale, `${path}: ${actual} vs ${expected}`);
  } else if (expected && typeof expected === "object") {
    assert.equal(typeof actual, "object", path);
    const keys = Object.keys(expected as object);
    assert.deepEqual(Object.keys(actual as object), keys, path);
    for (const key of keys) {
      assertClose(
        (actual as Record<string, unknown>)[key],
        (expected as Record<string, unknown>)[key],
        `${path}.${key}`,
      );
    }
  } else assert.equal(actual, expected, path);
}
