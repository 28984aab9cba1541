// Calls that exceed WebGPU's per-shader storage-buffer limit are split and retried, and the
// largest size that ran is kept. Dawn's error is simulated on the CPU by a session that refuses
// batches above 2 with Dawn's message; tests/webgpu.test.ts runs the same on a real adapter.
import assert from "node:assert/strict";
import { InferenceSession } from "onnxruntime-node";
import { OnnxUnet } from "../src/models/onnx/unet.ts";
import { NoiseSchedule } from "../src/models/sd/schedule.ts";
import { assertClose, limitedSession, unetRequest } from "./unet-helpers.ts";

const PATH = "fixtures/models/sd-vpred/unet/model.onnx";
const schedule = NoiseSchedule.fromConfig(
  JSON.parse(await Deno.readTextFile("fixtures/models/sd-vpred/scheduler/scheduler_config.json")),
);

Deno.test("a call over the shader buffer limit is halved until it runs; later calls start there", async () => {
  const session = await InferenceSession.create(PATH);
  try {
    const plain = new OnnxUnet(session, PATH, schedule, 8);
    const { session: limited, batches } = limitedSession(session, 2);
    const unet = new OnnxUnet(limited, PATH, schedule, 8);
    const request = unetRequest(unet, 7, 1);
    const expected = await plain.predict(request, [4, 8, 8]);
    assertClose(await unet.predict(request, [4, 8, 8]), expected);
    // 7 fails, 4 fails, 2 + 2 run; 3 fails, 2 + 1 run
    assert.deepEqual(batches, [7, 4, 2, 2, 3, 2, 1]);
    assert.equal(unet.largestCall, 2);
    batches.length = 0;
    const again = unetRequest(unet, 5, 2);
    assertClose(await unet.predict(again, [4, 8, 8]), await plain.predict(again, [4, 8, 8]));
    assert.deepEqual(batches, [2, 2, 1], "no failed call once the size is known");
  } finally {
    await session.release();
  }
});

Deno.test("a single item over the limit is not split further; the error keeps Dawn's message as cause", async () => {
  const session = await InferenceSession.create(PATH);
  try {
    const { session: limited, batches } = limitedSession(session, 0);
    const unet = new OnnxUnet(limited, PATH, schedule, 8);
    await assert.rejects(
      () => unet.predict(unetRequest(unet, 2, 3), [4, 8, 8]),
      (e: Error) => /Too many storage buffers/.test(String((e.cause as Error)?.message)),
    );
    assert.deepEqual(batches, [2, 1]);
  } finally {
    await session.release();
  }
});

Deno.test("hidden states reused across calls: cycling condition sequences give a fresh model's numbers", async () => {
  const { loadModel } = await import("../src/query/load-model.ts");
  const open = () => loadModel("fixtures/models/sd-int32-int64t", { device: "cpu", batchSize: 4 });
  const cycled = await open();
  try {
    const d = cycled.shape[0] * cycled.shape[1] * cycled.shape[2];
    const prompts = ["a red circle", "a blue square", "a circle", ""];
    const batch = async (model: typeof cycled, order: number[]) => ({
      noisy: Float32Array.from({ length: order.length * d }, (_, j) => Math.sin(j)),
      logSnr: new Float64Array(order.length).fill(0.5),
      conditions: await Promise.all(order.map((k) => model.encode(prompts[k]))),
    });
    const orders = [[0, 1, 2, 3], [3, 2, 1, 0], [0, 1, 2, 3], [0, 0, 1, 1], [3, 2, 1, 0]];
    for (const order of orders) {
      const a = await cycled.predictNoise(await batch(cycled, order));
      // a model loaded for this comparison alone: its first call, nothing cached
      const fresh = await open();
      try {
        assert.deepEqual(a, await fresh.predictNoise(await batch(fresh, order)), `order ${order}`);
      } finally {
        await fresh.dispose();
      }
    }
  } finally {
    await cycled.dispose();
  }
});
