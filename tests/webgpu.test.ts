// The WebGPU device, on whatever adapter this machine has: in CI Mesa's lavapipe 25, installed by
// .ci/run through tools/setup_lavapipe.sh (VK_DRIVER_FILES). Without an adapter every case but
// the failure message is skipped, with one line saying why.
import assert from "node:assert/strict";
import { InferenceSession } from "onnxruntime-node";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import { modelIdentity } from "../src/models/denoiser.ts";
import { OnnxUnet } from "../src/models/onnx/unet.ts";
import { NoiseSchedule } from "../src/models/sd/schedule.ts";
import { Random } from "../src/numerics/random.ts";
import { denoiserConformance } from "./conformance.ts";
import { assertClose, limitedSession, unetRequest } from "./unet-helpers.ts";

/** Whether a WebGPU session can be made here, and if not why. */
async function probe(): Promise<string | undefined> {
  try {
    const model = await loadModel("fixtures/models/pixel-space", { device: "webgpu" });
    await model.dispose();
    return undefined;
  } catch (error) {
    return (error as Error).message;
  }
}
const unavailable = await probe();
if (unavailable) console.log(`webgpu: skipped — no WebGPU adapter here: ${unavailable}`);
const ignore = unavailable !== undefined;

// fp32 graphs agree with the CPU to float32 rounding (REFERENCE §13: within 5e-6; measured on
// lavapipe 25: at most 4.8e-7). sd-fp16's graph is tiny: 3.8e-6 measured, allowed 5e-5 (on an
// SD-sized fp16 UNet WebGPU is about 10× less precise than the CPU: 0.035 vs 0.0028)
const FIXTURES = [
  { name: "pixel-space", tolerance: 5e-6 },
  { name: "sd-vpred", tolerance: 5e-6 },
  { name: "sd-scalart-onnxdata", tolerance: 5e-6 },
  { name: "sd-fp16", tolerance: 5e-5 },
  { name: "attention-tiny", tolerance: 5e-6 },
];

for (const { name, tolerance } of FIXTURES) {
  denoiserConformance(`webgpu ${name}`, {
    create: () => loadModel(`fixtures/models/${name}`, { device: "webgpu", batchSize: 4 }),
    prompt: "a red circle",
    batchTolerance: Math.max(tolerance, 1e-5),
    ignore,
  });

  Deno.test({
    name: `webgpu ${name}: noise predictions and information equal the CPU's (within ${tolerance})`,
    ignore,
    fn: async () => {
      const [gpu, cpu] = await Promise.all([
        loadModel(`fixtures/models/${name}`, { device: "webgpu", batchSize: 4 }),
        loadModel(`fixtures/models/${name}`, { device: "cpu", batchSize: 4 }),
      ]);
      try {
        const d = cpu.shape[0] * cpu.shape[1] * cpu.shape[2];
        const random = new Random(5);
        const n = 6;
        const noisy = random.fillGaussian(new Float32Array(n * d));
        const logSnr = Float64Array.from({ length: n }, (_, i) => cpu.snapLogSnr!(-4 + 1.6 * i));
        const batch = async (m: OnnxModel) => ({
          noisy,
          logSnr,
          conditions: await Promise.all(
            Array.from({ length: n }, (_, i) => m.encode(i % 2 ? "a red circle" : "")),
          ),
        });
        const [a, b] = [
          await gpu.predictNoise(await batch(gpu)),
          await cpu.predictNoise(await batch(cpu)),
        ];
        assertClose(a, b, tolerance);
        const image = noisy.subarray(0, d);
        const total = (m: OnnxModel) =>
          m.info(image).given("a red circle").samples(8).seed(4).total();
        const [tg, tc] = [await total(gpu), await total(cpu)];
        assert.ok(
          Math.abs(tg.nats - tc.nats) <= 100 * tolerance * Math.max(1, Math.abs(tc.nats)),
          `${tg.nats} vs ${tc.nats}`,
        );
      } finally {
        await Promise.all([gpu.dispose(), cpu.dispose()]);
      }
    },
  });
}

Deno.test({
  name: "webgpu: the attention tap gives the CPU's cross-attention probabilities",
  ignore,
  fn: async () => {
    const [gpu, cpu] = await Promise.all([
      loadModel("fixtures/models/attention-tiny", { device: "webgpu" }),
      loadModel("fixtures/models/attention-tiny", { device: "cpu" }),
    ]);
    try {
      const d = cpu.shape[0] * cpu.shape[1] * cpu.shape[2];
      const noisy = new Random(2).fillGaussian(new Float32Array(2 * d));
      const ask = async (m: OnnxModel) =>
        await m.attention!.predict({
          noisy,
          logSnr: Float64Array.of(0.5, -1),
          conditions: [await m.encode("a red circle"), await m.encode("a blue square")],
        });
      const [a, b] = [await ask(gpu), await ask(cpu)];
      assert.equal(a.layers.length, 2);
      a.layers.forEach((item, i) =>
        item.forEach((layer, l) => assertClose(layer.probs, b.layers[i][l].probs, 1e-5))
      );
    } finally {
      await Promise.all([gpu.dispose(), cpu.dispose()]);
    }
  },
});

Deno.test({
  name: "webgpu: a call over the buffer limit is split and retried on a real adapter",
  ignore,
  fn: async () => {
    const path = "fixtures/models/sd-vpred/unet/model.onnx";
    const schedule = NoiseSchedule.fromConfig(
      JSON.parse(
        await Deno.readTextFile("fixtures/models/sd-vpred/scheduler/scheduler_config.json"),
      ),
    );
    const [gpuSession, cpuSession] = await Promise.all([
      InferenceSession.create(path, { executionProviders: ["webgpu"] }),
      InferenceSession.create(path),
    ]);
    try {
      const { session, batches } = limitedSession(gpuSession, 3);
      const unet = new OnnxUnet(session, path, schedule, 8);
      const request = unetRequest(unet, 8, 9);
      const expected = await new OnnxUnet(cpuSession, path, schedule, 8).predict(request, [
        4,
        8,
        8,
      ]);
      assertClose(await unet.predict(request, [4, 8, 8]), expected, 5e-6);
      assert.deepEqual(batches, [8, 4, 2, 2, 4, 2, 2]);
      assert.equal(unet.largestCall, 2);
    } finally {
      await Promise.all([gpuSession.release(), cpuSession.release()]);
    }
  },
});

Deno.test({
  name: "webgpu: the adapter is in the model's provenance; auto never picks a software adapter",
  ignore,
  fn: async () => {
    const model = await loadModel("fixtures/models/pixel-space", { device: "webgpu" });
    try {
      const { runtime } = await modelIdentity(model);
      assert.match(runtime!, /^onnxruntime-node 1\.30\.0, webgpu \(.+\)$/);
      const { webgpuAdapter } = await import("../src/models/onnx/webgpu.ts");
      const adapter = await webgpuAdapter();
      if (adapter?.fallback) {
        assert.match(runtime!, /, software\)$/);
        const auto = await loadModel("fixtures/models/pixel-space", { device: "auto" });
        assert.equal(auto.device, "cpu", "a software adapter is never chosen by auto");
        await auto.dispose();
      }
    } finally {
      await model.dispose();
    }
  },
});

Deno.test("webgpu: without a Vulkan driver the error says so, with the loader's own line", async () => {
  // a child process, so that the Vulkan loader reads a driver list that names no driver
  const script = `import { loadModel } from "./src/query/load-model.ts";
try { await loadModel("fixtures/models/pixel-space", { device: "webgpu" }); console.log("LOADED"); }
catch (e) { console.log(e.message); }`;
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--config", "deno.json", script],
    env: { VK_DRIVER_FILES: "/nonexistent/icd.json", VK_ICD_FILENAMES: "/nonexistent/icd.json" },
    stderr: "null",
  }).output();
  const message = new TextDecoder().decode(stdout);
  if (/no Vulkan loader/.test(message)) {
    assert.match(message, /libvulkan\.so\.1 cannot be loaded.*libvulkan1/);
  } else {
    assert.match(message, /the Vulkan loader found no driver/);
    assert.match(message, /VK_DRIVER_FILES/);
    assert.match(message, /Found no drivers|Failed to open JSON/);
  }
});
