/**
 * `loadModel(dir)`: opens a Stable Diffusion 1.x/2.x ONNX export folder on the CPU or a GPU and
 * returns it as a {@link Model} with the same fluent API as every other backend.
 *
 * @module
 */
import { join } from "node:path";
import { folderProfile } from "../profile-file.ts";
import { InvalidArgumentError, ModelLoadError } from "../../errors.ts";
import { warn } from "../../warnings.ts";
import { readModelFolder } from "../sd/folder.ts";
import { type HubOptions, locateModelFolder } from "../hub/resolve.ts";
import { OnnxDiffusionDenoiser } from "./onnx-denoiser.ts";
import { NoiseSchedule } from "../sd/schedule.ts";
import { sessionFactory } from "./session.ts";
import type { Device, OnnxDenoiser } from "./onnx-model.ts";
import { OnnxTextEncoder } from "./text-encoder.ts";
import { loadTokenizer } from "../sd/tokenizer.ts";
import { OnnxUnet } from "./unet.ts";
import { OnnxVaeDecoder, OnnxVaeEncoder } from "./vae.ts";
import { findInGraphSampling } from "./vae-sampling.ts";
import { addGraphOutputs } from "./attention-graph.ts";

/**
 * Options of {@link loadOnnxDenoiser} (and `loadModel`); the hub's (`offline`, `cacheDir`,
 * `token`, `endpoint`, `onDownloadProgress`) apply when the location is a hub id.
 */
export interface LoadModelOptions extends HubOptions {
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
 * Loads a Stable Diffusion ONNX export folder (REFERENCE §5) as a denoiser. Users call `loadModel`
 * (src/query/load-model.ts), which loads this module on first use and wraps the denoiser.
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
  const schedule = NoiseSchedule.fromConfig(
    folder.schedulerConfig,
    join(dir, "scheduler", "scheduler_config.json"),
  );
  const tokenizer = await loadTokenizer(folder.tokenizerDir);
  const factory = sessionFactory({
    device: options.device,
    threads: options.threads,
    deviceId: options.deviceId,
  });
  const sessions = [];
  try {
    const unetSession = await factory.create(folder.unetPath);
    sessions.push(unetSession);
    const unet = new OnnxUnet(unetSession, folder.unetPath, schedule, batchSize);
    const textSession = await factory.create(folder.textEncoderPath);
    sessions.push(textSession);
    const textEncoder = new OnnxTextEncoder(textSession, folder.textEncoderPath);
    if (
      textEncoder.contextLength !== undefined &&
      textEncoder.contextLength !== tokenizer.contextLength
    ) {
      throw new ModelLoadError(
        `${folder.textEncoderPath} takes ${textEncoder.contextLength} tokens but the tokenizer in ` +
          `${folder.tokenizerDir} pads to ${tokenizer.contextLength}; expected equal lengths`,
      );
    }
    const unetHidden = unet.hiddenInput.shape[2];
    if (
      textEncoder.hiddenSize !== undefined && typeof unetHidden === "number" &&
      textEncoder.hiddenSize !== unetHidden
    ) {
      throw new ModelLoadError(
        `${folder.textEncoderPath} outputs hidden states of width ${textEncoder.hiddenSize} but ` +
          `${folder.unetPath} takes encoder_hidden_states of width ${unetHidden}; expected equal widths`,
      );
    }
    let vaeEncoder: OnnxVaeEncoder | undefined;
    let shape: [number, number, number];
    let resolution: number;
    if (folder.vaeEncoderPath) {
      const path = folder.vaeEncoderPath;
      const bytes = await Deno.readFile(path);
      const sampling = findInGraphSampling(bytes, path);
      // an encoder that samples in its graph is run with its mean exposed, and read there
      const vaeSession = sampling
        ? await factory.createFromBytes(addGraphOutputs(bytes, [sampling.mean]), path)
        : await factory.createFromBytes(bytes, path);
      sessions.push(vaeSession);
      vaeEncoder = new OnnxVaeEncoder(vaeSession, path, folder.scalingFactor, sampling?.mean);
      resolution = options.resolution ?? vaeEncoder.metadataResolution ??
        (await configResolution(dir)) ?? defaultResolution(dir, schedule);
      // one probe run gives the real latent shape (channels, downsampling) of this VAE
      const probe = await vaeEncoder.encode(
        new Float32Array(3 * resolution * resolution),
        resolution,
      );
      shape = probe.shape;
    } else {
      shape = unet.metadataShape ?? (await pixelShapeFromConfig(dir, options.resolution));
      resolution = shape[1];
    }
    checkUnetShape(unet, shape, folder.unetPath);
    const decoderPath = folder.vaeDecoderPath;
    const model = new OnnxDiffusionDenoiser({
      name,
      dir,
      ...(source ? { source } : {}),
      ...(logSnrProfile ? { logSnrProfile } : {}),
      device: factory.device,
      adapter: await factory.adapter(),
      tokenizer,
      schedule,
      textEncoder,
      unet,
      vaeEncoder,
      vaeDecoder: decoderPath
        ? async () =>
          new OnnxVaeDecoder(await factory.create(decoderPath), decoderPath, folder.scalingFactor)
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

function defaultResolution(dir: string, schedule: NoiseSchedule): number {
  const resolution = schedule.predictionType === "v_prediction" ? 768 : 512;
  warn(
    `infodiff: ${dir} does not state its image resolution (dynamic VAE axes, no config.json ` +
      `sample_size); using ${resolution} px. Pass loadModel(dir, { resolution }) to override.`,
  );
  return resolution;
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
