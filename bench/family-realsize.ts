/**
 * SDXL, SD 3 and FLUX.1 at their real tensor sizes with graphs that cost almost nothing, as
 * `sd-realsize` is for SD 2.x: what the backend itself spends per UNet/transformer item (noising,
 * the flow conversion, FLUX's packing, feeding, reductions) where the data are the real ones —
 * SDXL 4×128×128 latents with 77×2048 states, a 1280 pooled vector and time_ids; SD 3 16×128×128
 * with (77 + 256) × 4096 states and a 2048 pooled vector; FLUX.1 16×128×128 packed into
 * 4,096 tokens × 64 with 512 × 4096 T5 states, a 768 pooled vector, ids and guidance. The folders are
 * built here (out/family-realsize/, never committed) from the tiny fixtures' tokenizers and configs
 * with each graph replaced by one of the real input/output names, dtypes and widths (optimum-onnx's,
 * fixtures/models/FAMILIES.md) whose work is a few elementwise operations.
 *
 * @module
 */
import { join } from "node:path";
import onnxProto from "npm:onnx-proto@8.0.1";

const { onnx } = onnxProto;
const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

type Dim = number | string;
const value = (name: string, type: number, dims: Dim[]) => ({
  name,
  type: {
    tensorType: {
      elemType: type,
      shape: {
        dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
      },
    },
  },
});
const floats = (name: string, dims: number[], fill: number) => ({
  name,
  dataType: FLOAT,
  dims,
  floatData: new Array(dims.reduce((a, b) => a * b, 1)).fill(fill),
});
const ints = (name: string, values: number[]) => ({
  name,
  dataType: INT64,
  dims: [values.length],
  int64Data: values,
});
const node = (opType: string, input: string[], output: string[], attribute: unknown[] = []) => ({
  opType,
  input,
  output,
  attribute,
});
const intsAttribute = (name: string, values: number[]) => ({
  name,
  type: onnx.AttributeProto.AttributeType.INTS,
  ints: values,
});
const intAttribute = (name: string, i: number) => ({
  name,
  type: onnx.AttributeProto.AttributeType.INT,
  i,
});

function model(graph: Record<string, unknown>): Uint8Array {
  return onnx.ModelProto.encode({
    irVersion: 8,
    opsetImport: [{ domain: "", version: 17 }],
    producerName: "infodiff-bench",
    graph: { name: "g", ...graph },
  }).finish();
}

/**
 * A text encoder: input_ids → last_hidden_state [b, s, width] (each token's id, broadcast), and as
 * the family reads them hidden_states.0…layers, text_embeds or pooler_output [b, pooled].
 */
function textEncoder(
  width: number,
  options: { layers?: number; pooled?: { name: string; width: number } },
): Uint8Array {
  const nodes = [
    node("Cast", ["input_ids"], ["ids"], [intAttribute("to", FLOAT)]),
    node("Unsqueeze", ["ids", "axis2"], ["column"]),
    node("Mul", ["column", "row"], ["last_hidden_state"]),
  ];
  const outputs = [value("last_hidden_state", FLOAT, ["batch_size", "sequence_length", width])];
  for (let k = 0; k <= (options.layers ?? -1); k++) {
    nodes.push(node("Identity", ["last_hidden_state"], [`hidden_states.${k}`]));
    outputs.push(value(`hidden_states.${k}`, FLOAT, ["batch_size", "sequence_length", width]));
  }
  const initializer = [ints("axis2", [2]), floats("row", [1, 1, width], 0.001)];
  if (options.pooled) {
    const { name, width: pooled } = options.pooled;
    nodes.push(
      node("ReduceMean", ["ids"], ["mean"], [
        intsAttribute("axes", [1]),
        intAttribute("keepdims", 1),
      ]),
      node("Mul", ["mean", "pooled_row"], [name]),
    );
    outputs.push(value(name, FLOAT, ["batch_size", pooled]));
    initializer.push(floats("pooled_row", [1, pooled], 0.001));
  }
  return model({
    node: nodes,
    input: [value("input_ids", INT64, ["batch_size", "sequence_length"])],
    output: outputs,
    initializer,
  });
}

/**
 * A denoiser: its output is 0.5·sample plus a per-item scalar from each conditioning input (so
 * every input is read), with the real names and ranks; `extra` are [name, dims] of further inputs.
 */
function network(
  sample: { name: string; dims: Dim[] },
  output: string,
  timestep: Dim[],
  context: Dim[],
  extra: readonly (readonly [string, Dim[], number])[],
): Uint8Array {
  const rank = sample.dims.length;
  const perItem = [-1, ...new Array(rank - 1).fill(1)];
  const nodes = [
    node("Mul", [sample.name, "half"], ["scaled"]),
    node("ReduceMean", ["encoder_hidden_states"], ["context_mean"], [
      intsAttribute("axes", [1, 2]),
      intAttribute("keepdims", 0),
    ]),
    node("Reshape", ["context_mean", "per_item"], ["context_term"]),
    node("Add", ["scaled", "context_term"], ["with_context"]),
    ...(timestep.length === 0 ? [node("Mul", ["timestep", "zero"], ["time_zero"])] : [
      node("ReduceMean", ["timestep"], ["time_mean"], [intAttribute("keepdims", 0)]),
      node("Mul", ["time_mean", "zero"], ["time_zero"]),
    ]),
    node("Add", ["with_context", "time_zero"], ["sum0"]),
  ];
  let last = "sum0";
  extra.forEach(([name, , type], k) => {
    const cast = type === INT64 ? `${name}_float` : name;
    if (type === INT64) nodes.push(node("Cast", [name], [cast], [intAttribute("to", FLOAT)]));
    nodes.push(
      node("ReduceMean", [cast], [`${name}_mean`], [intAttribute("keepdims", 0)]),
      node("Mul", [`${name}_mean`, "zero"], [`${name}_zero`]),
      node("Add", [last, `${name}_zero`], [`sum${k + 1}`]),
    );
    last = `sum${k + 1}`;
  });
  nodes.push(node("Identity", [last], [output]));
  return model({
    node: nodes,
    input: [
      value(sample.name, FLOAT, sample.dims),
      value("timestep", FLOAT, timestep),
      value("encoder_hidden_states", FLOAT, context),
      ...extra.map(([name, dims, type]) => value(name, type, dims)),
    ],
    output: [value(output, FLOAT, sample.dims)],
    initializer: [
      floats("half", [], 0.5),
      floats("zero", [], 0),
      ints("per_item", perItem),
    ],
  });
}

/** VAE encoder: 8×8 average pooling, then a 1×1 convolution to mean ‖ log-variance. */
function vaeEncoder(channels: number): Uint8Array {
  return model({
    node: [
      node("AveragePool", ["sample"], ["pooled"], [
        intsAttribute("kernel_shape", [8, 8]),
        intsAttribute("strides", [8, 8]),
      ]),
      node("Conv", ["pooled", "weight"], ["latent_parameters"]),
    ],
    input: [value("sample", FLOAT, ["batch_size", 3, "sample_height", "sample_width"])],
    output: [value("latent_parameters", FLOAT, ["batch_size", 2 * channels, "h", "w"])],
    initializer: [floats("weight", [2 * channels, 3, 1, 1], 0.1)],
  });
}

/** VAE decoder: a 1×1 convolution to RGB, then ×8 nearest upsampling. */
function vaeDecoder(channels: number): Uint8Array {
  return model({
    node: [
      node("Conv", ["latent_sample", "weight"], ["rgb"]),
      node("Resize", ["rgb", "", "scales"], ["sample"], [{
        name: "mode",
        type: onnx.AttributeProto.AttributeType.STRING,
        s: new TextEncoder().encode("nearest"),
      }]),
    ],
    input: [value("latent_sample", FLOAT, ["batch_size", channels, "h", "w"])],
    output: [value("sample", FLOAT, ["batch_size", 3, "H", "W"])],
    initializer: [floats("weight", [3, channels, 1, 1], 0.1), {
      name: "scales",
      dataType: FLOAT,
      dims: [4],
      floatData: [1, 1, 8, 8],
    }],
  });
}

async function copyTree(from: string, to: string, skip: (name: string) => boolean) {
  await Deno.mkdir(to, { recursive: true });
  for await (const entry of Deno.readDir(from)) {
    if (skip(entry.name)) continue;
    const source = join(from, entry.name), target = join(to, entry.name);
    if (entry.isDirectory) await copyTree(source, target, skip);
    else await Deno.copyFile(source, target);
  }
}

async function writeJson(path: string, edit: Record<string, unknown>) {
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(await Deno.readTextFile(path));
  } catch { /* a new file */ }
  await Deno.writeTextFile(path, JSON.stringify({ ...json, ...edit }, null, 1));
}

/**
 * The three folders, written under `root` from the tiny fixtures (kept when already there).
 *
 * @example
 * ```ts ignore
 * import { familyRealSizeModels } from "./family-realsize.ts";
 * const { flux } = await familyRealSizeModels(); // out/family-realsize/flux
 * ```
 */
export async function familyRealSizeModels(
  root = "out/family-realsize",
): Promise<Record<"sdxl" | "sd3" | "flux", string>> {
  const dirs = { sdxl: join(root, "sdxl"), sd3: join(root, "sd3"), flux: join(root, "flux") };
  const write = async (dir: string, files: Record<string, Uint8Array>) => {
    for (const [path, bytes] of Object.entries(files)) {
      await Deno.mkdir(join(dir, path, ".."), { recursive: true });
      await Deno.writeFile(join(dir, path), bytes);
    }
  };
  const fresh = async (family: keyof typeof dirs, tiny: string) => {
    try {
      await Deno.stat(join(dirs[family], ".complete"));
      return false;
    } catch {
      await Deno.remove(dirs[family], { recursive: true }).catch(() => {});
      await copyTree(
        `fixtures/models/${tiny}`,
        dirs[family],
        (name) => name.endsWith(".onnx") || name === "reference.json" || name === "config.json",
      );
      return true;
    }
  };
  const vae = async (dir: string, channels: number, scaling: number, shift: number | null) => {
    await write(dir, {
      "vae_encoder/model.onnx": vaeEncoder(channels),
      "vae_decoder/model.onnx": vaeDecoder(channels),
    });
    await writeJson(join(dir, "vae_encoder", "config.json"), {
      _class_name: "AutoencoderKL",
      block_out_channels: [128, 256, 512, 512],
      latent_channels: channels,
      sample_size: 1024,
      scaling_factor: scaling,
      shift_factor: shift,
    });
  };
  if (await fresh("sdxl", "tiny-sdxl")) {
    await write(dirs.sdxl, {
      "text_encoder/model.onnx": textEncoder(768, { layers: 12 }),
      "text_encoder_2/model.onnx": textEncoder(1280, {
        layers: 32,
        pooled: { name: "text_embeds", width: 1280 },
      }),
      "unet/model.onnx": network(
        { name: "sample", dims: ["batch_size", 4, "height", "width"] },
        "out_sample",
        [],
        ["batch_size", "sequence_length", 2048],
        [["text_embeds", ["batch_size", 1280], FLOAT], ["time_ids", ["batch_size", 6], FLOAT]],
      ),
    });
    await writeJson(join(dirs.sdxl, "unet", "config.json"), { sample_size: 128 });
    await vae(dirs.sdxl, 4, 0.13025, null);
    await Deno.writeTextFile(join(dirs.sdxl, ".complete"), "");
  }
  if (await fresh("sd3", "tiny-sd3")) {
    await write(dirs.sd3, {
      "text_encoder/model.onnx": textEncoder(768, {
        layers: 12,
        pooled: { name: "text_embeds", width: 768 },
      }),
      "text_encoder_2/model.onnx": textEncoder(1280, {
        layers: 32,
        pooled: { name: "text_embeds", width: 1280 },
      }),
      "text_encoder_3/model.onnx": textEncoder(4096, {}),
      "transformer/model.onnx": network(
        { name: "hidden_states", dims: ["batch_size", 16, "height", "width"] },
        "out_hidden_states",
        ["step"],
        ["batch_size", "sequence_length", 4096],
        [["pooled_projections", ["batch_size", 2048], FLOAT]],
      ),
    });
    await writeJson(join(dirs.sd3, "transformer", "config.json"), {
      sample_size: 128,
      patch_size: 2,
      joint_attention_dim: 4096,
    });
    await vae(dirs.sd3, 16, 1.5305, 0.0609);
    await Deno.writeTextFile(join(dirs.sd3, ".complete"), "");
  }
  if (await fresh("flux", "tiny-flux")) {
    await write(dirs.flux, {
      "text_encoder/model.onnx": textEncoder(768, {
        pooled: { name: "pooler_output", width: 768 },
      }),
      "text_encoder_2/model.onnx": textEncoder(4096, {}),
      "transformer/model.onnx": network(
        { name: "hidden_states", dims: ["batch_size", "packed_height_width", 64] },
        "out_hidden_states",
        ["step"],
        ["batch_size", "sequence_length", 4096],
        [
          ["pooled_projections", ["batch_size", 768], FLOAT],
          ["img_ids", ["packed_height_width", 3], INT64],
          ["txt_ids", ["sequence_length", 3], INT64],
          ["guidance", ["batch_size"], FLOAT],
        ],
      ),
    });
    await writeJson(join(dirs.flux, "transformer", "config.json"), {
      guidance_embeds: true,
      in_channels: 64,
      joint_attention_dim: 4096,
      pooled_projection_dim: 768,
    });
    await vae(dirs.flux, 16, 0.3611, 0.1159);
    await Deno.writeTextFile(join(dirs.flux, ".complete"), "");
  }
  return dirs;
}
