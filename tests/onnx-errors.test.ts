import assert from "node:assert/strict";
import { join } from "node:path";
import {
  InvalidArgumentError,
  InvalidImageError,
  ModelLoadError,
  ModelRuntimeError,
} from "../src/errors.ts";
import { loadModel } from "../src/query/load-model.ts";
import { fixtureDir } from "./onnx-truth.ts";

/** A scratch copy of a fixture folder that a test may break. */
async function copyFixture(name: string): Promise<string> {
  const target = await Deno.makeTempDir({ prefix: "infodiff-onnx-" });
  const copy = async (from: string, to: string) => {
    for await (const entry of Deno.readDir(from)) {
      const source = join(from, entry.name);
      const destination = join(to, entry.name);
      if (entry.isDirectory) {
        await Deno.mkdir(destination);
        await copy(source, destination);
      } else {
        await Deno.copyFile(source, destination);
      }
    }
  };
  await copy(fixtureDir(name), target);
  return target;
}

function loadError(pattern: RegExp[]) {
  return (error: Error) => {
    assert.ok(error instanceof ModelLoadError, `expected ModelLoadError, got ${error}`);
    for (const p of pattern) assert.match(error.message, p);
    return true;
  };
}

Deno.test("missing folder: ModelLoadError naming it and the expected layout", async () => {
  await assert.rejects(
    () => loadModel("fixtures/models/does-not-exist", { device: "cpu" }),
    loadError([/does-not-exist/, /unet\/model\.onnx/, /model_index\.json/]),
  );
});

Deno.test("missing unet/model.onnx: the message names that path", async () => {
  const dir = await copyFixture("sd-int32-int64t");
  try {
    await Deno.remove(join(dir, "unet", "model.onnx"));
    await assert.rejects(
      () => loadModel(dir, { device: "cpu" }),
      loadError([
        new RegExp(`missing file ${join(dir, "unet", "model.onnx")}`),
        /expected|must hold/,
      ]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("SDXL-like folder (text_encoder_2, tokenizer_2) is refused, naming what was found", async () => {
  const dir = await copyFixture("sd-int32-int64t");
  try {
    await Deno.mkdir(join(dir, "text_encoder_2"));
    await Deno.mkdir(join(dir, "tokenizer_2"));
    await assert.rejects(
      () => loadModel(dir, { device: "cpu" }),
      loadError([/text_encoder_2/, /SDXL/]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("one VAE half without the other is refused", async () => {
  const dir = await copyFixture("sd-int32-int64t");
  try {
    await Deno.remove(join(dir, "vae_decoder"), { recursive: true });
    await assert.rejects(
      () => loadModel(dir, { device: "cpu" }),
      loadError([/vae_decoder/, /both/]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a UNet whose inputs match no known variant: the error lists what was found", async () => {
  const dir = await copyFixture("sd-int32-int64t");
  try {
    await Deno.copyFile(join(dir, "text_encoder", "model.onnx"), join(dir, "unet", "model.onnx"));
    await assert.rejects(
      () => loadModel(dir, { device: "cpu" }),
      loadError([/input_ids: int32\[batch,77\]/, /found no sample/]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("malformed scheduler_config.json: ModelLoadError naming the file", async () => {
  const dir = await copyFixture("sd-int32-int64t");
  try {
    await Deno.writeTextFile(join(dir, "scheduler", "scheduler_config.json"), "{ not json");
    await assert.rejects(
      () => loadModel(dir, { device: "cpu" }),
      loadError([/scheduler_config\.json/]),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("NaN in the UNet output: ModelRuntimeError, not a silent NaN", async () => {
  const model = await loadModel(fixtureDir("nan-unet"), { device: "cpu" });
  try {
    const condition = await model.encode("a red circle");
    await assert.rejects(
      () =>
        model.predictNoise({
          noisy: new Float32Array(256),
          logSnr: Float64Array.of(1),
          conditions: [condition],
        }),
      (error: Error) =>
        error instanceof ModelRuntimeError && /NaN/.test(error.message) &&
        /timestep 214/.test(error.message),
    );
    // the estimators ask the backend not to scan its output (their sums of squares see every
    // value) and reject in their own reduction instead, naming the draw
    const unchecked = await model.predictNoise({
      noisy: new Float32Array(256),
      logSnr: Float64Array.of(1),
      conditions: [condition],
      finiteChecked: true,
    });
    assert.ok(unchecked.some((v) => Number.isNaN(v)), "finiteChecked skips the backend's pass");
    await assert.rejects(
      () => model.info("fixtures/images/test-64.png").given("a red circle").total(),
      (error: Error) =>
        error instanceof ModelRuntimeError &&
        /noise prediction of draw 0 at log-SNR .* is not finite/.test(error.message),
    );
  } finally {
    await model.dispose();
  }
});

Deno.test("unreadable or empty images: InvalidImageError naming the input", async () => {
  const model = await loadModel(fixtureDir("sd-int32-int64t"), { device: "cpu" });
  try {
    await assert.rejects(
      () => model.prepare("fixtures/images/no-such-image.png"),
      (e: Error) => e instanceof InvalidImageError && e.message.includes("no-such-image.png"),
    );
    await assert.rejects(
      () => model.prepare(new TextEncoder().encode("this is not a PNG")),
      (e: Error) => e instanceof InvalidImageError && e.message.includes("<17 bytes>"),
    );
    await assert.rejects(
      () => model.prepare(new Uint8Array(0)),
      (e: Error) => e instanceof InvalidImageError && /empty/.test(e.message),
    );
    await assert.rejects(
      () => model.prepare(new Float32Array(10)),
      (e: Error) => e instanceof InvalidImageError && /10 values/.test(e.message),
    );
    await assert.rejects(
      () => model.prepare(new Float32Array(256).fill(NaN)),
      (e: Error) => e instanceof InvalidImageError && /NaN/.test(e.message),
    );
  } finally {
    await model.dispose();
  }
});

Deno.test("conditions from elsewhere and bad options are refused", async () => {
  await assert.rejects(
    () => loadModel(fixtureDir("sd-int32-int64t"), { batchSize: 0 }),
    InvalidArgumentError,
  );
  await assert.rejects(
    // deno-lint-ignore no-explicit-any
    () => loadModel(fixtureDir("sd-int32-int64t"), { device: "tpu" as any }),
    (e: Error) => e instanceof InvalidArgumentError && e.message.includes('"tpu"'),
  );
  const model = await loadModel(fixtureDir("sd-int32-int64t"), { device: "cpu" });
  try {
    await assert.rejects(
      () =>
        model.predictNoise({
          noisy: new Float32Array(256),
          logSnr: Float64Array.of(0),
          conditions: [{ prompt: "forged" }],
        }),
      (e: Error) => e instanceof InvalidArgumentError && e.message.includes("forged"),
    );
  } finally {
    await model.dispose();
  }
});

Deno.test('device "cuda" without the CUDA provider: ModelLoadError that explains the install', async () => {
  let model;
  try {
    model = await loadModel(fixtureDir("sd-int32-int64t"), { device: "cuda" });
  } catch (error) {
    assert.ok(error instanceof ModelLoadError, `got ${error}`);
    // the install script's real options (its default on linux/x64 is the CUDA 12 download)
    assert.match(error.message, /ONNXRUNTIME_NODE_INSTALL unset/);
    assert.match(error.message, /deno install --allow-scripts=npm:onnxruntime-node/);
    assert.doesNotMatch(error.message, /ONNXRUNTIME_NODE_INSTALL=cuda12/);
    assert.match(error.message, /device: "webgpu".*or "cpu"/);
    return;
  }
  // a machine with a working CUDA provider: then the model must really be on CUDA
  assert.equal(model.device, "cuda");
  await model.dispose();
});

Deno.test('device "auto" falls back to the CPU with exactly one warning line', async () => {
  const warnings: string[] = [];
  const original = console.warn;
  console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
  let model;
  try {
    model = await loadModel(fixtureDir("sd-int32-int64t"), { device: "auto" });
  } finally {
    console.warn = original;
  }
  try {
    if (model.device === "cpu") {
      assert.equal(warnings.length, 1, warnings.join("\n"));
      assert.match(warnings[0], /CUDA is not available.*CPU/);
      assert.ok(!warnings[0].includes("\n"));
    } else {
      assert.equal(model.device, "cuda");
      assert.equal(warnings.length, 0);
    }
  } finally {
    await model.dispose();
  }
});

Deno.test("resolution: dynamic VAE axes read sample_size from the config; without it 512 px is assumed with a warning", async () => {
  // sd-scalart-onnxdata's VAE has dynamic height/width (as diffusers exports do) and a config
  const model = await loadModel(fixtureDir("sd-scalart-onnxdata"), { device: "cpu" });
  assert.deepEqual(model.imageSize, { width: 64, height: 64 });
  await model.dispose();

  const dir = await copyFixture("sd-scalart-onnxdata");
  try {
    await Deno.writeTextFile(
      join(dir, "vae_encoder", "config.json"),
      JSON.stringify({ scaling_factor: 0.3 }),
    );
    const warnings: string[] = [];
    const original = console.warn;
    console.warn = (...args: unknown[]) => warnings.push(args.join(" "));
    try {
      // 512 px → a 4×64×64 latent, which this UNet (fixed 4×8×8) cannot take: refused, not guessed
      await assert.rejects(
        () => loadModel(dir, { device: "cpu" }),
        loadError([/4×8×8/, /4×64×64/]),
      );
    } finally {
      console.warn = original;
    }
    assert.equal(warnings.length, 1);
    assert.match(warnings[0], /using 512 px/);
    const resized = await loadModel(dir, { device: "cpu", resolution: 64 });
    assert.deepEqual([...resized.shape], [4, 8, 8]);
    await resized.dispose();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
