/**
 * Reads and validates a Stable Diffusion ONNX export folder (REFERENCE §5) before any session is
 * created, so a wrong path or an unsupported model fails with a message naming what is missing or
 * what was found.
 *
 * @module
 */
import { join } from "node:path";
import { ModelLoadError } from "../../errors.ts";
import type { SchedulerConfig } from "./schedule.ts";

/** The VAE scaling factor SD 1.x/2.x use when no VAE config says otherwise. */
export const DEFAULT_VAE_SCALING = 0.18215;

/**
 * The layout loadModel expects, quoted in error messages.
 *
 * @example
 * ```ts
 * import { EXPECTED_LAYOUT } from "./folder.ts";
 * console.assert(EXPECTED_LAYOUT.includes("unet/model.onnx"));
 * ```
 */
export const EXPECTED_LAYOUT = [
  "model_index.json",
  "scheduler/scheduler_config.json",
  "tokenizer/ (vocab.json and merges.txt, or tokenizer.json; special_tokens_map.json, tokenizer_config.json)",
  "text_encoder/model.onnx",
  "unet/model.onnx (+ weights.pb or model.onnx_data for external weights)",
  "vae_encoder/model.onnx and vae_decoder/model.onnx (both, or neither for a pixel-space model)",
].join("; ");

/** The files of a validated SD ONNX folder. */
export interface ModelFolder {
  /** the folder */
  readonly dir: string;
  /** parsed model_index.json */
  readonly modelIndex: Record<string, unknown>;
  /** parsed scheduler/scheduler_config.json */
  readonly schedulerConfig: SchedulerConfig;
  /** the tokenizer folder */
  readonly tokenizerDir: string;
  /** text_encoder/model.onnx */
  readonly textEncoderPath: string;
  /** unet/model.onnx */
  readonly unetPath: string;
  /** vae_encoder/model.onnx, absent for a pixel-space model */
  readonly vaeEncoderPath?: string;
  /** vae_decoder/model.onnx, absent for a pixel-space model */
  readonly vaeDecoderPath?: string;
  /** latent scaling factor (VAE config `scaling_factor`, else 0.18215); 1 for pixel space */
  readonly scalingFactor: number;
}

/** Folders of models this backend cannot run, with the reason. */
/** Parts of a diffusers layout that mark a model infodiff cannot load (SDXL, SD 3, Flux). */
export const UNSUPPORTED_PARTS: readonly (readonly [string, string])[] = [
  ["text_encoder_2", "a second text encoder (SDXL)"],
  ["tokenizer_2", "a second tokenizer (SDXL)"],
  ["text_encoder_3", "a third text encoder (SD 3)"],
  ["transformer", "a transformer denoiser instead of a UNet (SD 3 / Flux)"],
];

/**
 * Validates an SD ONNX export folder and reads its JSON files.
 *
 * @example
 * ```ts
 * import { readModelFolder } from "./folder.ts";
 * const folder = await readModelFolder("fixtures/models/sd-int32-int64t");
 * console.assert(folder.scalingFactor === 0.5);
 * ```
 */
export async function readModelFolder(dir: string): Promise<ModelFolder> {
  await requireDirectory(dir, dir);
  for (const [name, what] of UNSUPPORTED_PARTS) {
    if (await exists(join(dir, name))) {
      throw new ModelLoadError(
        `${dir} contains "${name}/", i.e. ${what}; only single-text-encoder Stable Diffusion ` +
          `1.x/2.x exports are supported (expected layout: ${EXPECTED_LAYOUT})`,
      );
    }
  }
  const modelIndex = await readJson(join(dir, "model_index.json"), dir);
  const schedulerConfig = await readJson(join(dir, "scheduler", "scheduler_config.json"), dir);
  const tokenizerDir = join(dir, "tokenizer");
  await requireDirectory(tokenizerDir, dir);
  // vocab.json + merges.txt, or a tokenizer.json holding the same BPE model (the tokenizer reads either)
  if (!(await exists(join(tokenizerDir, "tokenizer.json")))) {
    for (const file of ["vocab.json", "merges.txt"]) {
      await requireFile(join(tokenizerDir, file), dir);
    }
  }
  const textEncoderPath = join(dir, "text_encoder", "model.onnx");
  const unetPath = join(dir, "unet", "model.onnx");
  await requireFile(textEncoderPath, dir);
  await requireFile(unetPath, dir);

  const encoder = join(dir, "vae_encoder", "model.onnx");
  const decoder = join(dir, "vae_decoder", "model.onnx");
  const [hasEncoder, hasDecoder] = [await exists(encoder), await exists(decoder)];
  if (hasEncoder !== hasDecoder) {
    const [found, missing] = hasEncoder ? [encoder, decoder] : [decoder, encoder];
    throw new ModelLoadError(
      `found ${found} but not ${missing}: a latent model needs both VAE halves, a pixel-space ` +
        `model neither (expected layout: ${EXPECTED_LAYOUT})`,
    );
  }
  const latent = hasEncoder && hasDecoder;
  return {
    dir,
    modelIndex,
    schedulerConfig: schedulerConfig as SchedulerConfig,
    tokenizerDir,
    textEncoderPath,
    unetPath,
    ...(latent ? { vaeEncoderPath: encoder, vaeDecoderPath: decoder } : {}),
    scalingFactor: latent ? await scalingFactor(dir) : 1,
  };
}

/** `scaling_factor` from the first VAE config present, else the SD default. */
async function scalingFactor(dir: string): Promise<number> {
  for (const sub of ["vae_decoder", "vae_encoder", "vae"]) {
    const path = join(dir, sub, "config.json");
    if (!(await exists(path))) continue;
    const config = await readJson(path, dir);
    if (config.scaling_factor === undefined) continue;
    const value = config.scaling_factor;
    if (typeof value !== "number" || !(value > 0) || !Number.isFinite(value)) {
      throw new ModelLoadError(`${path}: scaling_factor must be a positive number, got ${value}`);
    }
    return value;
  }
  return DEFAULT_VAE_SCALING;
}

/**
 * Whether a path exists (any kind of entry); errors other than "not found" are thrown.
 *
 * @example
 * ```ts
 * import { exists } from "./folder.ts";
 * console.assert(await exists("fixtures/models/sd-vpred/model_index.json"));
 * ```
 */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

async function requireDirectory(path: string, root: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw missing(path, root, "folder");
    throw error;
  }
  if (!info.isDirectory) {
    throw new ModelLoadError(
      `${path} is not a folder; expected a folder (layout under ${root}: ${EXPECTED_LAYOUT})`,
    );
  }
}

async function requireFile(path: string, root: string): Promise<void> {
  if (!(await exists(path))) throw missing(path, root, "file");
}

function missing(path: string, root: string, kind: string): ModelLoadError {
  return new ModelLoadError(
    `missing ${kind} ${path}; a Stable Diffusion ONNX export folder (${root}) must hold: ${EXPECTED_LAYOUT}`,
  );
}

async function readJson(path: string, root: string): Promise<Record<string, unknown>> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) throw missing(path, root, "file");
    throw new ModelLoadError(`cannot read ${path}; expected a JSON file`, { cause: error });
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(`${path} is not valid JSON`, { cause: error });
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new ModelLoadError(
      `${path} holds ${Array.isArray(value) ? "an array" : String(value)}; expected a JSON object`,
    );
  }
  return value as Record<string, unknown>;
}
