/**
 * The VAE halves of an SD ONNX export. The encoder maps pixels in [−1, 1] to latents: exports
 * output either `latent_parameters` [B, 2C, h, w] (mean ‖ logvar; the mean is used, so latents are
 * deterministic) or, in older exports, `latent_sample` (whatever the graph computes: some draw a
 * random sample there). The latent is then put on the pipeline's scale outside the graph, as the
 * VAE config says: (mean − shift_factor − latents_mean_c) · scaling_factor / latents_std_c (SD 1.x/2.x
 * and SDXL: mean · scaling_factor; SD 3 and FLUX.1 subtract their shift_factor first).
 *
 * @module
 */
import { type InferenceSession, Tensor } from "npm:onnxruntime-node@1.30.0";
import { ModelLoadError, ModelRuntimeError } from "../../errors.ts";
import { fromFloat16Bits, toFloat16Bits } from "./float16.ts";
import type { LatentConvention } from "../sd/folder.ts";
import { describeTensors, inputInfo, outputInfo } from "./session.ts";
import {
  matchTensor,
  onlyInput,
  VAE_DECODER_INPUT,
  VAE_DECODER_OUTPUT,
  VAE_ENCODER_INPUT,
  VAE_ENCODER_OUTPUT,
} from "./tensor-roles.ts";

/**
 * Runs a VAE encoder session and returns scaled latent means.
 *
 * @example
 * ```ts ignore
 * import { OnnxVaeEncoder } from "./vae.ts";
 * const vae = new OnnxVaeEncoder(session, "vae_encoder/model.onnx", { scalingFactor: 0.18215, shiftFactor: 0 });
 * const latent = await vae.encode(pixels, 512); // Float32Array of 4·64·64
 * ```
 */
export class OnnxVaeEncoder {
  /** the session (owned by the model, which disposes it) */
  readonly session: InferenceSession;
  /** `latent_parameters` (mean ‖ logvar) or `latent_sample` */
  readonly outputName: string;
  /** whether the output holds mean ‖ logvar (optimum's latent_parameters) rather than a latent */
  readonly moments: boolean;
  /** the export's name for the image input */
  readonly inputName: string;
  /** dtype of `sample` */
  readonly inputType: "float32" | "float16";
  /** pixel resolution fixed by the export's input shape, if any */
  readonly metadataResolution: number | undefined;
  /** total milliseconds spent in session.run */
  runMs = 0;
  /** session.run calls */
  runs = 0;

  /** the scaling factor (0.18215 for SD) */
  readonly scalingFactor: number;

  /**
   * @param session a VAE encoder session
   * @param source its path, for messages
   * @param latentConvention how the mean is put on the pipeline's scale (scaling, shift, stats)
   * @param mean the graph's mean value, for an encoder that samples in its graph
   */
  constructor(
    session: InferenceSession,
    readonly source: string,
    readonly latentConvention: LatentConvention,
    mean?: string,
  ) {
    this.scalingFactor = latentConvention.scalingFactor;
    this.session = session;
    const inputs = inputInfo(session);
    const outputs = outputInfo(session);
    const sample = onlyInput(inputs, VAE_ENCODER_INPUT, source, "sample [B,3,H,W]");
    // a graph that samples in-graph is read at its mean, an extra output the loader added
    const output = mean !== undefined
      ? outputs.get(mean)
      : matchTensor(outputs, VAE_ENCODER_OUTPUT, `${source} outputs`);
    if (!output) {
      throw new ModelLoadError(
        `${source}: has no output ${mean}; found outputs ${describeTensors(outputs)}`,
      );
    }
    if ((sample.type !== "float32" && sample.type !== "float16") || sample.type !== output.type) {
      throw new ModelLoadError(
        `${source}: sample is ${sample.type} and ${output.name} is ${output.type}; expected both ` +
          `float32 or both float16`,
      );
    }
    this.inputType = sample.type;
    this.inputName = sample.name;
    this.outputName = output.name;
    this.moments = output.name === "latent_parameters" || output.name === "latent_dist";
    const [, , h, w] = sample.shape;
    this.metadataResolution = typeof h === "number" && h === w ? h : undefined;
  }

  /**
   * Encodes one CHW image in [−1, 1] of `resolution`² pixels; returns the scaled latent mean and
   * its shape.
   */
  async encode(
    pixels: Float32Array,
    resolution: number,
  ): Promise<{ latent: Float32Array; shape: [number, number, number] }> {
    const dims = [1, 3, resolution, resolution];
    const input = this.inputType === "float16"
      ? new Tensor("float16", toFloat16Bits(pixels), dims)
      : new Tensor("float32", pixels, dims);
    let results;
    const start = performance.now();
    try {
      results = await this.session.run({ [this.inputName]: input }, [this.outputName]);
      this.runMs += performance.now() - start;
      this.runs++;
    } catch (error) {
      throw new ModelRuntimeError(
        `${this.source}: session.run failed on a ${resolution}×${resolution} image`,
        { cause: error },
      );
    }
    const tensor = results[this.outputName];
    const values = tensor.type === "float16"
      ? fromFloat16Bits(tensor.data as Uint16Array)
      : new Float32Array(tensor.data as Float32Array);
    const [, channels, h, w] = tensor.dims;
    tensor.dispose();
    // latent_parameters holds mean ‖ logvar along channels: the mean is the first half
    const latentChannels = this.moments ? channels / 2 : channels;
    if (!Number.isInteger(latentChannels)) {
      throw new ModelRuntimeError(
        `${this.source}: latent_parameters has an odd channel count ${channels}`,
      );
    }
    const latent = values.slice(0, latentChannels * h * w);
    const { scalingFactor, shiftFactor } = this.latentConvention;
    const { mean, std } = channelStats(this.latentConvention, latentChannels, this.source);
    const plane = h * w;
    for (let i = 0; i < latent.length; i++) {
      const c = Math.floor(i / plane);
      latent[i] = (latent[i] - shiftFactor - mean[c]) * scalingFactor / std[c];
      if (!Number.isFinite(latent[i])) {
        throw new ModelRuntimeError(
          `${this.source}: latent contains ${latent[i]}; expected finite values`,
        );
      }
    }
    return { latent, shape: [latentChannels, h, w] };
  }
}

/**
 * Runs a VAE decoder session: scaled latents → pixels in [−1, 1] (for sampling studies).
 *
 * @example
 * ```ts ignore
 * import { OnnxVaeDecoder } from "./vae.ts";
 * const decoder = new OnnxVaeDecoder(session, "vae_decoder/model.onnx", { scalingFactor: 0.18215, shiftFactor: 0 });
 * const pixels = await decoder.decode(latent, [4, 64, 64]);
 * ```
 */
export class OnnxVaeDecoder {
  /** the session (owned by the model, which disposes it) */
  readonly session: InferenceSession;
  /** dtype of `latent_sample` */
  readonly inputType: "float32" | "float16";
  /** the export's names for the latent input and the image output */
  readonly inputName: string;
  readonly outputName: string;

  /**
   * @param session a VAE decoder session
   * @param source its path, for messages
   * @param latentConvention the encoder's convention, undone before decoding
   */
  constructor(
    session: InferenceSession,
    readonly source: string,
    readonly latentConvention: LatentConvention,
  ) {
    this.session = session;
    const inputs = inputInfo(session);
    const outputs = outputInfo(session);
    const latent = onlyInput(inputs, VAE_DECODER_INPUT, source, "latent_sample [B,C,h,w]");
    const sample = matchTensor(outputs, VAE_DECODER_OUTPUT, `${source} outputs`);
    this.inputName = latent.name;
    this.outputName = sample.name;
    this.inputType = latent.type as "float32" | "float16";
  }

  /** Decodes one scaled latent (CHW) into a CHW image in [−1, 1]; returns pixels and shape. */
  async decode(
    latent: Float32Array,
    shape: readonly [number, number, number],
  ): Promise<{ pixels: Float32Array; shape: [number, number, number] }> {
    const { scalingFactor, shiftFactor } = this.latentConvention;
    const { mean, std } = channelStats(this.latentConvention, shape[0], this.source);
    const plane = shape[1] * shape[2];
    const unscaled = latent.map((z, i) => {
      const c = Math.floor(i / plane);
      return z * std[c] / scalingFactor + mean[c] + shiftFactor;
    });
    const dims = [1, ...shape];
    const input = this.inputType === "float16"
      ? new Tensor("float16", toFloat16Bits(unscaled), dims)
      : new Tensor("float32", unscaled, dims);
    const results = await this.session.run({ [this.inputName]: input }, [this.outputName]);
    const tensor = results[this.outputName];
    const pixels = tensor.type === "float16"
      ? fromFloat16Bits(tensor.data as Uint16Array)
      : new Float32Array(tensor.data as Float32Array);
    const [, c, h, w] = tensor.dims;
    tensor.dispose();
    return { pixels, shape: [c, h, w] };
  }
}

/** Per-channel latents_mean / latents_std of a convention (0 and 1 where it has none). */
function channelStats(
  convention: LatentConvention,
  channels: number,
  source: string,
): { mean: readonly number[]; std: readonly number[] } {
  if (!convention.latentsMean) {
    return { mean: new Array(channels).fill(0), std: new Array(channels).fill(1) };
  }
  if (convention.latentsMean.length !== channels) {
    throw new ModelRuntimeError(
      `${source}: the VAE config's latents_mean has ${convention.latentsMean.length} values but ` +
        `the latent has ${channels} channels; expected one per channel`,
    );
  }
  return { mean: convention.latentsMean, std: convention.latentsStd! };
}
