/**
 * `loadModel(dir)`: opens a diffusers ONNX export folder — Stable Diffusion 1.x/2.x, SDXL, SD 3/3.5
 * or FLUX.1, told apart by model_index.json and the folders present — on the CPU or a GPU and
 * returns it as a {@link Model} with the same fluent API as every other backend. The family's
 * pipeline file says what happens to a prompt and an image (sd-pipeline.ts, sdxl-pipeline.ts,
 * sd3-pipeline.ts, flux-pipeline.ts).
 *
 * @module
 */
import { join } from "node:path";
import { folderProfile } from "../profile-file.ts";
import { InvalidArgumentError, ModelLoadError } from "../../errors.ts";
import { warn } from "../../warnings.ts";
import {
  exists,
  FAMILY_LAYOUTS,
  type ModelFolder,
  readFolderJson,
  readModelFolder,
} from "../sd/folder.ts";
import { type HubOptions, locateModelFolder } from "../hub/resolve.ts";
import { OnnxDiffusionDenoiser } from "./onnx-denoiser.ts";
import { inputInfo, sessionFactory } from "./session.ts";
import type { Device, OnnxDenoiser } from "./onnx-model.ts";
import { OnnxUnet } from "./unet.ts";
import type { InferenceSession } from "npm:onnxruntime-node@1.30.0";
import { matchTensors, UNET_INPUTS } from "./tensor-roles.ts";
import { type PipelineOptions, transformerNumber } from "./pipeline.ts";
import { sdPipeline } from "./sd-pipeline.ts";
import { sdxlPipeline } from "./sdxl-pipeline.ts";
import { sd3Pipeline } from "./sd3-pipeline.ts";
import { fluxPipeline } from "./flux-pipeline.ts";
import { OnnxVaeDecoder, OnnxVaeEncoder } from "./vae.ts";
import { findInGraphSampling } from "./vae-sampling.ts";
import { addGraphOutputs } from "./attention-graph.ts";

/**
 * Options of {@link loadOnnxDenoiser} (and `loadModel`); the hub's (`offline`, `cacheDir`,
 * `token`, `endpoint`, `onDownloadProgress`) apply when the location is a hub id.
 */
export interface LoadModelOptions extends HubOptions, PipelineOptions {
  /** `"auto"` (default: CUDA if available, else CPU with a warning), `"cuda"`, `"cpu"` or `"webgpu"` */
  readonly device?: Device;
  /** items per UNet call (default 8); a fixed-batch export overrides it */
  readonly batchSize?: number;
  /** CPU threads per session (default: onnxruntime's choice) */
  readonly threads?: number;
  /** the CUDA device to run on (default 0; see CUDA_VISIBLE_DEVICES); not for cpu or webgpu */
  readonly deviceId?: number;
  /** prompt encodings kept, least recently used dropped first (default 128) */
  readonly promptCacheSize?: number;
  /**
   * Image resolution in pixels, for exports whose shapes and configs do not say (diffusers'
   * conversion script writes dynamic axes and no VAE config). Default there: 512, or 768 for
   * v-prediction models (SD 2.x-768), with a warning.
   */
  readonly resolution?: number;
  /**
   * the calibrated log-SNR profile: by default the folder's `infodiff-logsnr-profile.json` when
   * there is one; a path reads that file instead; `false` ignores the folder's
   */
  readonly profile?: string | false;
}

/**
 * Loads a diffusers ONNX export folder (REFERENCE §5; SD 1.x/2.x, SDXL, SD 3/3.5, FLUX.1) as a
 * denoiser. Users call `loadModel` (src/query/load-model.ts), which loads this module on first use
 * and wraps the denoiser.
 *
 * @example
 * ```ts
 * import { loadOnnxDenoiser } from "./load-model.ts";
 * const model = await loadOnnxDenoiser("fixtures/models/sd-int32-int64t", { device: "cpu" });
 * console.assert(model.shape.join() === "4,8,8");
 * await model.dispose();
 * ```
 */
export async function loadOnnxDenoiser(
  location: string,
  options: LoadModelOptions = {},
): Promise<OnnxDenoiser> {
  const batchSize = options.batchSize ?? 8;
  if (!Number.isInteger(batchSize) || batchSize < 1) {
    throw new InvalidArgumentError(
      `batchSize must be a positive integer, got ${options.batchSize}`,
    );
  }
  if (
    options.resolution !== undefined &&
    !(Number.isInteger(options.resolution) && options.resolution > 0)
  ) {
    throw new InvalidArgumentError(
      `resolution must be a positive integer, got ${options.resolution}`,
    );
  }
  const promptCacheSize = options.promptCacheSize ?? 128;
  if (!Number.isInteger(promptCacheSize) || promptCacheSize < 1) {
    throw new InvalidArgumentError(
      `promptCacheSize must be a positive integer, got ${options.promptCacheSize}`,
    );
  }
  const { dir, name, source } = await locateModelFolder(location, options);
  const folder = await readModelFolder(dir);
  const logSnrProfile = await folderProfile(dir, options.profile);
  const factory = sessionFactory({
    device: options.device,
    threads: options.threads,
    deviceId: options.deviceId,
  });
  const sessions: InferenceSession[] = [];
  const open = async (path: string) => {
    const session = await factory.create(path);
    sessions.push(session);
    return session;
  };
  try {
    const unetSession = await open(folder.unetPath);
    let vaeEncoder: OnnxVaeEncoder | undefined;
    let shape: [number, number, number];
    let resolution: number;
    /** the size the folder itself says (or the family's default), without `options.resolution` */
    let defaultSize: number | undefined;
    if (folder.vaeEncoderPath) {
      const path = folder.vaeEncoderPath;
      const bytes = await Deno.readFile(path);
      const sampling = findInGraphSampling(bytes, path);
      // an encoder that samples in its graph is run with its mean exposed, and read there
      const vaeSession = sampling
        ? await factory.createFromBytes(addGraphOutputs(bytes, [sampling.mean]), path)
        : await factory.createFromBytes(bytes, path);
      sessions.push(vaeSession);
      vaeEncoder = new OnnxVaeEncoder(vaeSession, path, folder.latent, sampling?.mean);
      const fixedSize = vaeEncoder.metadataResolution;
      refuseOtherSize(options.resolution, fixedSize, path, "images");
      const stated = fixedSize ?? (await configResolution(dir)) ?? (await familyResolution(folder));
      resolution = options.resolution ?? stated ?? defaultResolution(dir, folder);
      defaultSize = stated ?? (folder.family === "sd" ? sdFallbackResolution(folder) : undefined);
      await checkResolution(folder, resolution, options.resolution !== undefined);
      // one probe run gives the real latent shape (channels, downsampling) of this VAE
      const probe = await vaeEncoder.encode(
        new Float32Array(3 * resolution * resolution),
        resolution,
      );
      shape = probe.shape;
    } else {
      const fixed = sampleShape(unetSession);
      refuseOtherSize(options.resolution, fixed?.[1], folder.unetPath, "data");
      defaultSize = fixed?.[1] ?? (await readSampleSize(join(dir, "unet", "config.json")));
      shape = fixed ?? (await pixelShapeFromConfig(dir, options.resolution ?? defaultSize));
      resolution = shape[1];
    }
    const context = { folder, open, shape, resolution, options };
    const pipeline = folder.family === "sdxl"
      ? await sdxlPipeline(context)
      : folder.family === "sd3"
      ? await sd3Pipeline(context)
      : folder.family === "flux"
      ? await fluxPipeline(context, unetSession)
      : await sdPipeline(context);
    const unet = new OnnxUnet(
      unetSession,
      folder.unetPath,
      pipeline.schedule,
      batchSize,
      [],
      pipeline.network,
    );
    pipeline.check?.(unet);
    if (!pipeline.flow) checkUnetShape(unet, shape, folder.unetPath);
    // another image size is another computation: a size the folder does not say is part of the
    // model's identity, so results and studies at two sizes never pass for one model's
    const sized = resolution === defaultSize
      ? pipeline
      : { ...pipeline, settings: { ...pipeline.settings, resolution } };
    const decoderPath = folder.vaeDecoderPath;
    const model = new OnnxDiffusionDenoiser({
      name,
      dir,
      ...(source ? { source } : {}),
      ...(logSnrProfile ? { logSnrProfile } : {}),
      device: factory.device,
      adapter: await factory.adapter(),
      pipeline: sized,
      unet,
      vaeEncoder,
      vaeDecoder: decoderPath
        ? async () =>
          new OnnxVaeDecoder(await factory.create(decoderPath), decoderPath, folder.latent)
        : undefined,
      shape,
      resolution,
      batchSize: unet.batchSize,
      promptCacheSize,
      unetFromBytes: (bytes) => factory.createFromBytes(bytes, folder.unetPath),
    });
    return model;
  } catch (error) {
    await Promise.all(sessions.map((session) => session.release()));
    throw error;
  }
}

function checkUnetShape(unet: OnnxUnet, shape: readonly number[], path: string): void {
  const fixed = unet.metadataShape;
  if (fixed && fixed.join() !== shape.join()) {
    throw new ModelLoadError(
      `${path} takes samples of shape ${fixed.join("×")} but the data are ${shape.join("×")}; ` +
        `expected the UNet to match the VAE latent (or the pixels of a pixel-space model)`,
    );
  }
}

/** `sample_size` (pixels) from a VAE config, when the export wrote one. */
async function configResolution(dir: string): Promise<number | undefined> {
  for (const sub of ["vae_encoder", "vae_decoder", "vae"]) {
    const size = await readSampleSize(join(dir, sub, "config.json"));
    if (size !== undefined) return size;
  }
  return undefined;
}

function defaultResolution(dir: string, folder: ModelFolder): number {
  if (folder.family !== "sd") {
    throw new ModelLoadError(
      `${dir} does not state its image resolution (dynamic VAE axes, no sample_size in the VAE's ` +
        `or the ${folder.unetPath.includes("transformer") ? "transformer" : "UNet"}'s ` +
        `config.json); pass loadModel(dir, { resolution })`,
    );
  }
  const resolution = sdFallbackResolution(folder);
  warn(
    `infodiff: ${dir} does not state its image resolution (dynamic VAE axes, no config.json ` +
      `sample_size); using ${resolution} px. Pass loadModel(dir, { resolution }) to override.`,
  );
  return resolution;
}

/** Refuses a size asked of a graph whose sample input has other fixed dimensions. */
function refuseOtherSize(
  asked: number | undefined,
  size: number | undefined,
  path: string,
  what: string,
): void {
  if (asked === undefined || size === undefined || asked === size) return;
  throw new InvalidArgumentError(
    `resolution ${asked}: ${path} takes ${size}×${size} ${what} only (its sample input has ` +
      `fixed dimensions); expected resolution ${size} or none`,
  );
}

/** An SD export's size when it states none: 768 for v-prediction (SD 2.x-768), else 512. */
function sdFallbackResolution(folder: ModelFolder): number {
  const prediction = (folder.schedulerConfig as { prediction_type?: string }).prediction_type;
  return prediction === "v_prediction" ? 768 : 512;
}

/** Pixel-space data shape from unet/config.json (in_channels, sample_size) or the option. */
async function pixelShapeFromConfig(
  dir: string,
  resolution?: number,
): Promise<[number, number, number]> {
  const path = join(dir, "unet", "config.json");
  const size = resolution ?? (await readSampleSize(path));
  if (size === undefined) {
    throw new ModelLoadError(
      `${dir} is a pixel-space model (no VAE) whose UNet has dynamic sample dimensions and no ` +
        `${path} sample_size; pass loadModel(dir, { resolution }) with the image size in pixels`,
    );
  }
  return [3, size, size];
}

async function readSampleSize(path: string): Promise<number | undefined> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
  let config: { sample_size?: unknown };
  try {
    config = JSON.parse(text);
  } catch (error) {
    throw new ModelLoadError(`${path} is not valid JSON`, { cause: error });
  }
  const size = Array.isArray(config.sample_size) ? config.sample_size[0] : config.sample_size;
  return typeof size === "number" && Number.isInteger(size) && size > 0 ? size : undefined;
}

/** The VAE's downsampling, 2^(len(block_out_channels) − 1) as diffusers computes it (default 8). */
async function vaeScaleFactor(folder: ModelFolder): Promise<number> {
  for (const sub of ["vae_encoder", "vae_decoder", "vae"]) {
    const path = join(folder.dir, sub, "config.json");
    if (!(await exists(path))) continue;
    const channels = (await readFolderJson(path, folder.dir)).block_out_channels;
    if (Array.isArray(channels) && channels.length > 0) return 2 ** (channels.length - 1);
  }
  return 8;
}

/**
 * The pipeline's default image size: SDXL's and SD 3's denoiser `sample_size` × the VAE's
 * downsampling, FLUX.1's fixed 128 × it (diffusers' `default_sample_size`).
 */
async function familyResolution(folder: ModelFolder): Promise<number | undefined> {
  if (folder.family === "sd") return undefined;
  const size = folder.family === "flux" ? 128 : folder.denoiserConfig?.sample_size;
  if (typeof size !== "number" || !Number.isInteger(size) || size < 1) return undefined;
  return size * (await vaeScaleFactor(folder));
}

/**
 * Image sides of a latent-space family must be multiples of the VAE's downsampling times the
 * transformer's patch (FLUX.1: 8·2 = 16; SD 3: 8·patch_size; SDXL: 8).
 */
async function checkResolution(
  folder: ModelFolder,
  resolution: number,
  given: boolean,
): Promise<void> {
  if (folder.family === "sd") return;
  const patch = folder.family === "flux"
    ? 2
    : folder.family === "sd3"
    ? transformerNumber(folder.denoiserConfig, "patch_size") ?? 2
    : 1;
  const multiple = (await vaeScaleFactor(folder)) * patch;
  if (resolution % multiple === 0) return;
  const message = `resolution ${resolution}: a ${FAMILY_LAYOUTS[folder.family].title} image's ` +
    `sides must be multiples of ${multiple} (the VAE's downsampling${
      patch > 1 ? ` × the transformer's ${patch}×${patch} patches` : ""
    }); expected e.g. ${resolution - (resolution % multiple) || multiple}`;
  throw given ? new InvalidArgumentError(message) : new ModelLoadError(message);
}

/** (C, H, W) of the UNet's sample when the export fixed them (a pixel-space model's data). */
function sampleShape(session: InferenceSession): [number, number, number] | undefined {
  const sample = matchTensors(inputInfo(session), UNET_INPUTS, "unet inputs").found.get("sample")!;
  const [, c, h, w] = sample.shape;
  return typeof c === "number" && typeof h === "number" && typeof w === "number"
    ? [c, h, w]
    : undefined;
}
