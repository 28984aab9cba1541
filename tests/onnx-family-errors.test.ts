// Bad input for SDXL, SD 3 and FLUX.1 (issue 24, part 6): each is a clear typed error that says
// what was wrong and what was expected, and nothing is guessed — a FLUX.1-dev export without its
// guidance input, a schnell export given a guidance, image sides that are not multiples of the
// model's, bfloat16 graphs, encoders whose widths do not fit the denoiser, options a family does
// not have; and SD 3 without text_encoder_3 runs on zeros in T5's place, as diffusers does.
import assert from "node:assert/strict";
import { join } from "node:path";
import onnxProto from "npm:onnx-proto@8.0.1";
import { InvalidArgumentError, ModelLoadError } from "../src/errors.ts";
import type { OnnxCondition } from "../src/models/onnx/onnx-model.ts";
import { sessionFactory } from "../src/models/onnx/session.ts";
import { loadModel } from "../src/query/load-model.ts";

/** A scratch copy of a fixture folder that a test may change. */
async function copyFixture(name: string): Promise<string> {
  const target = await Deno.makeTempDir({ prefix: "infodiff-family-" });
  const copy = async (from: string, to: string) => {
    for await (const entry of Deno.readDir(from)) {
      const source = join(from, entry.name), destination = join(to, entry.name);
      if (entry.isDirectory) {
        await Deno.mkdir(destination);
        await copy(source, destination);
      } else await Deno.copyFile(source, destination);
    }
  };
  await copy(`fixtures/models/${name}`, target);
  return target;
}

async function editJson(path: string, edit: (json: Record<string, unknown>) => void) {
  const json = JSON.parse(await Deno.readTextFile(path));
  edit(json);
  await Deno.writeTextFile(path, JSON.stringify(json));
}

function error(type: typeof ModelLoadError | typeof InvalidArgumentError, ...patterns: RegExp[]) {
  return (e: Error) => {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e}`);
    for (const p of patterns) assert.match(e.message, p);
    return true;
  };
}

const cpu = { device: "cpu" as const };

Deno.test("a FLUX.1-dev export without its guidance input is refused, and the reverse", async () => {
  // schnell's graph (no guidance input) under a config that says guidance_embeds: a dev export
  // whose guidance cannot be fed
  const dev = await copyFixture("tiny-flux-schnell");
  await editJson(join(dev, "transformer", "config.json"), (c) => c.guidance_embeds = true);
  await assert.rejects(
    () => loadModel(dev, cpu),
    error(ModelLoadError, /sets guidance_embeds/, /no guidance input/, /re-export/),
  );
  const schnell = await copyFixture("tiny-flux");
  await editJson(join(schnell, "transformer", "config.json"), (c) => c.guidance_embeds = false);
  await assert.rejects(
    () => loadModel(schnell, cpu),
    error(ModelLoadError, /takes a guidance input but .* guidance_embeds false/),
  );
});

Deno.test("guidance: refused for schnell and the families without it; checked for dev", async () => {
  await assert.rejects(
    () => loadModel("fixtures/models/tiny-flux-schnell", { ...cpu, guidance: 3.5 }),
    error(InvalidArgumentError, /guidance 3\.5/, /no guidance input/, /schnell/),
  );
  for (const name of ["tiny-sdxl", "tiny-sd3"]) {
    await assert.rejects(
      () => loadModel(`fixtures/models/${name}`, { ...cpu, guidance: 2 }),
      error(InvalidArgumentError, /guidance 2/, /expected it unset/),
    );
  }
  await assert.rejects(
    () => loadModel("fixtures/models/tiny-flux", { ...cpu, guidance: NaN }),
    error(InvalidArgumentError, /guidance must be a finite number/),
  );
  await assert.rejects(
    () => loadModel("fixtures/models/tiny-sd3", { ...cpu, maxSequenceLength: 513 }),
    error(InvalidArgumentError, /maxSequenceLength must be an integer in 1…512 for SD 3/),
  );
  await assert.rejects(
    () => loadModel("fixtures/models/tiny-sdxl", { ...cpu, maxSequenceLength: 77 }),
    error(InvalidArgumentError, /SDXL has no T5/),
  );
  await assert.rejects(
    () => loadModel("fixtures/models/sd-vpred", { ...cpu, unconditional: "zeros" }),
    error(InvalidArgumentError, /Stable Diffusion 1\.x\/2\.x has no such choice/),
  );
});

Deno.test("image sides that are not multiples of the model's are refused, saying the multiple", async () => {
  for (
    const [name, resolution, multiple] of [
      ["tiny-flux", 56, 16],
      ["tiny-sd3", 40, 16],
      ["tiny-sdxl", 60, 8],
    ] as const
  ) {
    await assert.rejects(
      () => loadModel(`fixtures/models/${name}`, { ...cpu, resolution }),
      error(
        InvalidArgumentError,
        new RegExp(`resolution ${resolution}: .* multiples of ${multiple}`),
      ),
    );
  }
  // a multiple loads, at that size
  const model = await loadModel("fixtures/models/tiny-flux", { ...cpu, resolution: 32 });
  try {
    assert.deepEqual([...model.shape], [16, 4, 4]);
    const total = await model.info(new Float32Array(16 * 4 * 4).fill(0.1)).given("a red circle")
      .samples(3).seed(1).total();
    assert.ok(Number.isFinite(total.nats));
  } finally {
    await model.dispose();
  }
});

Deno.test("an image size the folder does not say is part of the model's identity; its own size is not", async () => {
  const identity = async (resolution?: number) => {
    const model = await loadModel("fixtures/models/tiny-sd3", {
      ...cpu,
      ...(resolution === undefined ? {} : { resolution }),
    });
    try {
      return await model.identity!();
    } finally {
      await model.dispose();
    }
  };
  const own = await identity();
  assert.equal(own.pipeline?.resolution, undefined);
  // the fixture's VAE config says 64 px: giving 64 is the same model, 48 another
  assert.equal((await identity(64)).sha256, own.sha256);
  const other = await identity(48);
  assert.equal(other.pipeline?.resolution, 48);
  assert.notEqual(other.sha256, own.sha256);
});

Deno.test("an export whose network or VAE takes one size refuses another, naming it", async () => {
  await assert.rejects(
    () => loadModel("fixtures/models/shapes-tiny", { ...cpu, resolution: 48 }),
    error(
      InvalidArgumentError,
      /resolution 48: .* takes 32×32 data only .* expected resolution 32/,
    ),
  );
  // sd-vpred's VAE encoder takes 64×64 images: refused before any run, not by a failed one
  await assert.rejects(
    () => loadModel("fixtures/models/sd-vpred", { ...cpu, resolution: 48 }),
    error(
      InvalidArgumentError,
      /resolution 48: .*vae_encoder.* takes 64×64 images only .* expected resolution 64/,
    ),
  );
  const model = await loadModel("fixtures/models/shapes-tiny", { ...cpu, resolution: 32 });
  try {
    assert.deepEqual([...model.shape], [3, 32, 32]);
  } finally {
    await model.dispose();
  }
});

Deno.test("bfloat16 graphs are refused with the reason and what to export instead", async () => {
  const { onnx } = onnxProto;
  const BF16 = onnx.TensorProto.DataType.BFLOAT16;
  const tensor = (name: string) => ({
    name,
    type: { tensorType: { elemType: BF16, shape: { dim: [{ dimValue: 1 }, { dimValue: 4 }] } } },
  });
  const dir = await Deno.makeTempDir();
  for (const op of ["Identity", "MatMul"]) {
    const path = join(dir, `${op}.onnx`);
    await Deno.writeFile(
      path,
      onnx.ModelProto.encode({
        irVersion: 8,
        opsetImport: [{ domain: "", version: 17 }],
        graph: {
          name: "bf16",
          node: [{ opType: op, input: op === "MatMul" ? ["x", "w"] : ["x"], output: ["y"] }],
          initializer: op === "MatMul"
            ? [{ name: "w", dataType: BF16, dims: [4, 4], rawData: new Uint8Array(32) }]
            : [],
          input: [tensor("x")],
          output: [tensor("y")],
        },
      }).finish(),
    );
    await assert.rejects(
      () => sessionFactory(cpu).create(path),
      error(ModelLoadError, /is a bfloat16 graph \(bfloat16 tensors: x, y/, /--dtype fp16/),
    );
  }
});

Deno.test("encoders whose widths do not fit the denoiser are refused, naming both", async () => {
  // FLUX's 32-wide T5 in place of SD 3's 48-wide one
  const dir = await copyFixture("tiny-sd3");
  await Deno.copyFile(
    "fixtures/models/tiny-flux/text_encoder_2/model.onnx",
    join(dir, "text_encoder_3", "model.onnx"),
  );
  await assert.rejects(
    () => loadModel(dir, cpu),
    error(
      ModelLoadError,
      /SD 3's T5 and its transformer/,
      /text_encoder_3\/model\.onnx \(last_hidden_state\) gives 32 channels/,
      /takes 48/,
    ),
  );
  // an SDXL whose second encoder is the first one (3 layers, no projection): its graph disagrees
  // with text_encoder_2's config (4 layers); with that config too, it has no text_embeds
  const sdxl = await copyFixture("tiny-sdxl");
  await Deno.copyFile(
    join(sdxl, "text_encoder", "model.onnx"),
    join(sdxl, "text_encoder_2", "model.onnx"),
  );
  await assert.rejects(
    () => loadModel(sdxl, cpu),
    error(
      ModelLoadError,
      /exports hidden_states\.0…3 but its config\.json says num_hidden_layers 4/,
    ),
  );
  await Deno.copyFile(
    join(sdxl, "text_encoder", "config.json"),
    join(sdxl, "text_encoder_2", "config.json"),
  );
  await assert.rejects(
    () => loadModel(sdxl, cpu),
    error(ModelLoadError, /has no output text_embeds/, /CLIPTextModelWithProjection/),
  );
});

Deno.test("SD 3 without text_encoder_3 feeds zeros in T5's place, as diffusers does", async () => {
  const dir = await copyFixture("tiny-sd3");
  await Deno.remove(join(dir, "text_encoder_3"), { recursive: true });
  await Deno.remove(join(dir, "tokenizer_3"), { recursive: true });
  await editJson(join(dir, "model_index.json"), (index) => {
    index.text_encoder_3 = [null, null];
    index.tokenizer_3 = [null, null];
  });
  const reference = JSON.parse(await Deno.readTextFile("fixtures/models/tiny-sd3/reference.json"));
  const stored = (entry: { base64: string }) => {
    const bytes = Uint8Array.from(atob(entry.base64), (c) => c.charCodeAt(0));
    return new Float32Array(bytes.buffer);
  };
  const model = await loadModel(dir, cpu);
  try {
    assert.deepEqual(model.encoders.map((e) => e.name), ["text_encoder", "text_encoder_2"]);
    const entry = reference.encoders[0];
    const condition = await model.encode(entry.prompt) as OnnxCondition;
    const width = 48, clipRows = 77;
    assert.equal(condition.lastHiddenState.length, (clipRows + 256) * width);
    // the CLIP rows are the pipeline's (the T5 rows of the reference are T5's, here zeros)
    const expected = stored(entry.prompt_embeds).subarray(0, clipRows * width);
    const clip = condition.lastHiddenState.subarray(0, clipRows * width);
    const worst = clip.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0);
    assert.ok(worst < 1e-5, `CLIP rows differ by ${worst}`);
    assert.ok(condition.lastHiddenState.subarray(clipRows * width).every((v) => v === 0));
    assert.equal((await model.identity!()).pipeline?.t5, "zeros (no text_encoder_3)");
    const total = await model.info(await model.prepare("fixtures/images/test-64.png"))
      .given(entry.prompt).samples(3).seed(1).total();
    assert.ok(Number.isFinite(total.nats));
  } finally {
    await model.dispose();
  }
});

Deno.test("an EDM-parameterised SDXL (Playground v2.5's scheduler) is refused, not read as a β schedule", async () => {
  const dir = await copyFixture("tiny-sdxl");
  await Deno.writeTextFile(
    join(dir, "scheduler", "scheduler_config.json"),
    JSON.stringify({
      _class_name: "EDMDPMSolverMultistepScheduler",
      sigma_data: 0.5,
      sigma_max: 80,
      sigma_min: 0.002,
    }),
  );
  await assert.rejects(
    () => loadModel(dir, cpu),
    error(ModelLoadError, /EDMDPMSolverMultistepScheduler/, /EDM parameterisation/),
  );
});
