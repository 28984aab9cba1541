/**
 * The content hash of a diffusers model folder: SHA-256 over the relative path, size and bytes of
 * every file that defines the model (model_index.json and the scheduler, tokenizer, text encoder,
 * UNet or transformer and VAE folders, external weights included), in sorted order, streamed so a
 * multi-gigabyte UNet is never held in memory. Symbolic links (the Hugging Face cache's) are followed.
 *
 * @module
 */
import { createHash } from "node:crypto";
import { join } from "node:path";
import { ModelLoadError } from "../../errors.ts";

/**
 * The parts of a diffusers folder that define the model, for every family (SDXL's second encoder,
 * SD 3's third, the transformer of SD 3 and FLUX.1); safety checkers, READMEs and the like do not.
 */
export const MODEL_PARTS: readonly string[] = Object.freeze([
  "model_index.json",
  "scheduler",
  "tokenizer",
  "tokenizer_2",
  "tokenizer_3",
  "text_encoder",
  "text_encoder_2",
  "text_encoder_3",
  "unet",
  "transformer",
  "vae_encoder",
  "vae_decoder",
]);

/**
 * SHA-256 (hex) of a Stable Diffusion folder's model files.
 *
 * @throws {ModelLoadError} when a file cannot be read
 *
 * @example
 * ```ts
 * import { hashModelFolder } from "./identity.ts";
 * const a = await hashModelFolder("fixtures/models/sd-vpred");
 * console.assert(a.length === 64 && a === await hashModelFolder("fixtures/models/sd-vpred/"));
 * console.assert(a !== await hashModelFolder("fixtures/models/sd-fp16"));
 * ```
 */
export async function hashModelFolder(dir: string): Promise<string> {
  const files: string[] = [];
  for (const part of MODEL_PARTS) files.push(...await listFiles(dir, part));
  const hash = createHash("sha256");
  const buffer = new Uint8Array(1 << 20);
  for (const relative of files.sort()) {
    const path = join(dir, relative);
    try {
      using file = await Deno.open(path, { read: true });
      const { size } = await file.stat();
      hash.update(`${relative}\u0000${size}\u0000`);
      for (let read = await file.read(buffer); read !== null; read = await file.read(buffer)) {
        hash.update(buffer.subarray(0, read));
      }
    } catch (error) {
      throw new ModelLoadError(`cannot read ${path} to identify the model`, { cause: error });
    }
  }
  return hash.digest("hex");
}

async function listFiles(dir: string, relative: string): Promise<string[]> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(join(dir, relative));
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return [];
    throw new ModelLoadError(`cannot read ${join(dir, relative)}`, { cause: error });
  }
  if (info.isFile) return [relative];
  if (!info.isDirectory) return [];
  const out: string[] = [];
  for await (const entry of Deno.readDir(join(dir, relative))) {
    out.push(...await listFiles(dir, join(relative, entry.name)));
  }
  return out;
}
