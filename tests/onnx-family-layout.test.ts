// Which pipeline a diffusers folder holds (SD 1.x/2.x, SDXL, SD 3, FLUX.1), the files each one
// needs, and the pipelines refused by name (FLUX Fill/Kontext/Redux/Canny/Depth, SD 3 ControlNet,
// the SDXL refiner, LoRA-only repositories), on disk and on the hub before any graph is fetched.
import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import { ModelLoadError } from "../src/errors.ts";
import { readModelFolder } from "../src/models/sd/folder.ts";
import { parseHubSpec } from "../src/models/hub/cache.ts";
import { resolveHubModel } from "../src/models/hub/resolve.ts";
import { type ServedFile, startHubServer } from "./hub-server.ts";

const CLIP_TOKENIZER = ["vocab.json", "merges.txt"];
const T5_TOKENIZER = ["tokenizer.json"];

/** Folder contents of one family, as relative path → text (graphs are placeholders: never run). */
function layout(family: "sdxl" | "sd3" | "flux", index: Record<string, unknown> = {}) {
  const files: Record<string, string> = {
    "model_index.json": JSON.stringify({
      _class_name: {
        sdxl: "StableDiffusionXLPipeline",
        sd3: "StableDiffusion3Pipeline",
        flux: "FluxPipeline",
      }[family],
      ...index,
    }),
    "scheduler/scheduler_config.json": "{}",
    "text_encoder/model.onnx": "graph",
    "text_encoder_2/model.onnx": "graph",
    "vae_encoder/model.onnx": "graph",
    "vae_decoder/model.onnx": "graph",
    "vae_encoder/config.json": JSON.stringify({ scaling_factor: 0.5, shift_factor: 0.1 }),
  };
  const tokenizer = (dir: string, names: string[]) => {
    for (const name of names) files[`${dir}/${name}`] = "{}";
  };
  tokenizer("tokenizer", CLIP_TOKENIZER);
  tokenizer("tokenizer_2", family === "flux" ? T5_TOKENIZER : CLIP_TOKENIZER);
  if (family === "sd3") {
    files["text_encoder_3/model.onnx"] = "graph";
    tokenizer("tokenizer_3", T5_TOKENIZER);
  }
  files[family === "sdxl" ? "unet/model.onnx" : "transformer/model.onnx"] = "graph";
  return files;
}

async function folderOf(files: Record<string, string>): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-family-" });
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(dir, path)), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
  return dir;
}

function refused(...patterns: RegExp[]) {
  return (error: Error) => {
    assert.ok(error instanceof ModelLoadError, `expected ModelLoadError, got ${error}`);
    for (const p of patterns) assert.match(error.message, p);
    return true;
  };
}

Deno.test("each family's folder is told apart and lists the encoders its pipeline runs", async () => {
  for (const family of ["sdxl", "sd3", "flux"] as const) {
    const dir = await folderOf(layout(family));
    const folder = await readModelFolder(dir);
    assert.equal(folder.family, family);
    assert.deepEqual(
      folder.encoders.map((e) => `${e.name}:${e.kind}`),
      {
        sdxl: ["text_encoder:clip", "text_encoder_2:clip"],
        sd3: ["text_encoder:clip", "text_encoder_2:clip", "text_encoder_3:t5"],
        flux: ["text_encoder:clip", "text_encoder_2:t5"],
      }[family],
    );
    assert.match(folder.unetPath, family === "sdxl" ? /unet\/model\.onnx$/ : /transformer\//);
    assert.equal(folder.latent.shiftFactor, family === "sdxl" ? 0.1 : 0.1);
    assert.equal(folder.latent.scalingFactor, 0.5);
  }
});

Deno.test("pipelines infodiff cannot run are refused by name, with the reason", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ _class_name: "FluxFillPipeline" }, /FluxFillPipeline.*Fill.*masked image/],
    [{ _class_name: "FluxKontextPipeline" }, /FluxKontextPipeline.*Kontext.*reference image/],
    [{ _class_name: "FluxPriorReduxPipeline" }, /FluxPriorReduxPipeline.*Redux.*not a denoiser/],
    [{ _class_name: "FluxControlPipeline" }, /FluxControlPipeline.*Canny\/Depth.*control image/],
    [
      { _class_name: "StableDiffusion3ControlNetPipeline" },
      /StableDiffusion3ControlNetPipeline.*SD 3 ControlNet/,
    ],
    [
      {
        _class_name: "StableDiffusionXLImg2ImgPipeline",
        requires_aesthetics_score: true,
        text_encoder: [null, null],
      },
      /requires_aesthetics_score.*SDXL refiner/,
    ],
  ];
  for (const [index, pattern] of cases) {
    const dir = await folderOf({ "model_index.json": JSON.stringify(index) });
    await assert.rejects(() => readModelFolder(dir), refused(pattern));
  }
});

Deno.test("adapter-only folders (a LoRA, an SD 3 ControlNet model) are refused, saying what they are", async () => {
  const lora = await folderOf({ "pytorch_lora_weights.safetensors": "w", "README.md": "#" });
  await assert.rejects(() => readModelFolder(lora), refused(/LoRA adapter weights only/, /fuse/));
  const controlnet = await folderOf({
    "config.json": JSON.stringify({ _class_name: "SD3ControlNetModel" }),
    "diffusion_pytorch_model.safetensors": "w",
  });
  await assert.rejects(
    () => readModelFolder(controlnet),
    refused(/SD3ControlNetModel.*ControlNet/),
  );
});

Deno.test("a folder missing an encoder its pipeline needs is refused, naming the encoder", async () => {
  for (const [family, part] of [["sdxl", "text_encoder_2"], ["flux", "text_encoder_2"]] as const) {
    const files = layout(family);
    delete files[`${part}/model.onnx`];
    const dir = await folderOf(files);
    await assert.rejects(
      () => readModelFolder(dir),
      refused(new RegExp(`has no ${part}/model\\.onnx`), /its pipeline needs/),
    );
  }
  // SD 3's T5 is optional only where model_index.json says the pipeline has none
  const files = layout("sd3");
  delete files["text_encoder_3/model.onnx"];
  await assert.rejects(
    async () => await readModelFolder(await folderOf(files)),
    refused(/has no text_encoder_3\/model\.onnx/, /"text_encoder_3": \[null, null\]/),
  );
  const withoutT5 = layout("sd3", { text_encoder_3: [null, null], tokenizer_3: [null, null] });
  delete withoutT5["text_encoder_3/model.onnx"];
  const folder = await readModelFolder(await folderOf(withoutT5));
  assert.deepEqual(folder.encoders.map((e) => e.name), ["text_encoder", "text_encoder_2"]);
  assert.deepEqual(folder.absentEncoders.map((e) => e.name), ["text_encoder_3"]);
});

Deno.test("a T5 tokenizer without tokenizer.json is refused, naming the file", async () => {
  const files = layout("flux");
  delete files["tokenizer_2/tokenizer.json"];
  files["tokenizer_2/spiece.model"] = "sp";
  const dir = await folderOf(files);
  await assert.rejects(
    () => readModelFolder(dir),
    refused(new RegExp(`missing file ${join(dir, "tokenizer_2", "tokenizer.json")}`), /T5/),
  );
});

Deno.test("a flow family's VAE config must state its shift_factor; a folder mixing two pipelines is refused", async () => {
  const files = layout("sd3");
  files["vae_encoder/config.json"] = JSON.stringify({ scaling_factor: 1.5 });
  await assert.rejects(
    async () => await readModelFolder(await folderOf(files)),
    refused(/no shift_factor/),
  );
  const mixed = layout("flux");
  mixed["unet/model.onnx"] = "graph";
  await assert.rejects(
    async () => await readModelFolder(await folderOf(mixed)),
    refused(/names FluxPipeline \(FLUX\.1\) but the folder also has unet\//),
  );
});

Deno.test("hub: a refused pipeline or adapter costs no graph download; a family fetches only its files", async () => {
  // a real graph's bytes (the download reads each graph for its external-data files)
  const graph = await Deno.readFile("fixtures/models/sd-vpred/text_encoder/model.onnx");
  const served = (files: Record<string, string>): ServedFile[] =>
    Object.entries(files).map(([path, text]) => ({
      path,
      bytes: path.endsWith(".onnx") ? graph : new TextEncoder().encode(text),
      lfs: path.endsWith(".onnx"),
    }));
  const kontext = layout("flux");
  kontext["model_index.json"] = JSON.stringify({ _class_name: "FluxKontextPipeline" });
  const flux = {
    ...layout("flux"),
    "transformer/diffusion_pytorch_model.safetensors": "w",
    "text_encoder_2/model_fp16.onnx": "another variant",
    "tokenizer_2/spiece.model": "not read",
  };
  const commit = "0123456789abcdef0123456789abcdef01234567";
  const hub = startHubServer([
    { repo: "org/kontext", commit, files: served(kontext) },
    { repo: "org/lora", commit, files: served({ "pytorch_lora_weights.safetensors": "w" }) },
    {
      repo: "org/sd3-controlnet",
      commit,
      files: served({ "config.json": JSON.stringify({ _class_name: "SD3ControlNetModel" }) }),
    },
    { repo: "org/flux", commit, files: served(flux) },
  ]);
  const cacheDir = await Deno.makeTempDir();
  const resolve = (id: string) =>
    resolveHubModel(parseHubSpec(id)!, { endpoint: hub.url, cacheDir, env: {} });
  try {
    await assert.rejects(() => resolve("org/kontext"), refused(/FluxKontextPipeline.*Kontext/));
    await assert.rejects(() => resolve("org/lora"), refused(/LoRA adapter weights only/));
    await assert.rejects(() => resolve("org/sd3-controlnet"), refused(/SD3ControlNetModel/));
    const fetched = () =>
      hub.requests.map((r) => r.path).filter((p) => /\.onnx|spiece|safetensors/.test(p));
    assert.deepEqual(fetched(), [], "nothing large was fetched for the refused repositories");
    const model = await resolve("org/flux");
    const files = fetched().map((p) => p.replace(/^.*\/resolve\/[^/]+\//, ""));
    for (
      const graph of ["text_encoder", "text_encoder_2", "transformer", "vae_encoder", "vae_decoder"]
    ) {
      assert.ok(files.includes(`${graph}/model.onnx`), `${graph} fetched: ${files}`);
    }
    for (const unwanted of ["text_encoder_2/model_fp16.onnx", "tokenizer_2/spiece.model"]) {
      assert.ok(!files.includes(unwanted), `${unwanted} not fetched`);
    }
    assert.ok(files.every((f) => !f.endsWith(".safetensors")));
    assert.equal((await readModelFolder(model.dir)).family, "flux");
  } finally {
    await hub.close();
  }
});
