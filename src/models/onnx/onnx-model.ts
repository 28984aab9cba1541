/**
 * The public face of a loaded Stable Diffusion ONNX export: the {@link Model} interface plus what
 * later studies need (tokenizer, schedule, VAE decoding, timing counters).
 *
 * @module
 */
import type { Condition, ImageInput, LogSnrRange, Model } from "../denoiser.ts";
import type { GenerateOptions, InvertOptions } from "../../generation/ddim.ts";
import type { NoiseSchedule } from "../sd/schedule.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";

/** Where the sessions run. `"auto"` tries CUDA, then falls back to the CPU with one warning. */
export type Device = "auto" | "cuda" | "cpu" | "webgpu";

/** A prompt encoded by an {@link OnnxModel}: its token ids and text-encoder hidden states. */
export interface OnnxCondition extends Condition {
  /** the padded token ids fed to the text encoder */
  readonly inputIds: Int32Array;
  /** the text encoder's last_hidden_state, [contextLength · hiddenSize] */
  readonly lastHiddenState: Float32Array;
}

/** Cheap counters of native work, for benchmarks (time outside session.run = overhead). */
export interface OnnxModelStats {
  /** milliseconds inside UNet session.run */
  readonly unetMs: number;
  /** UNet session.run calls */
  readonly unetCalls: number;
  /** items predicted through predictNoise */
  readonly unetItems: number;
  /** milliseconds inside text-encoder session.run */
  readonly textEncoderMs: number;
}

/**
 * A Stable Diffusion 1.x/2.x ONNX export behind the {@link Model} interface (made by `loadModel`).
 *
 * @example
 * ```ts
 * import { loadModel } from "./load-model.ts";
 * const model = await loadModel("fixtures/models/sd-vpred", { device: "cpu" });
 * const condition = await model.encode("a red circle");
 * console.assert(condition.lastHiddenState.length === 77 * 8);
 * console.assert(model.schedule.predictionType === "v_prediction");
 * await model.dispose();
 * ```
 */
export interface OnnxModel extends Model {
  /** the device the sessions run on */
  readonly device: Exclude<Device, "auto">;
  /** true when the data are VAE latents (false: a pixel-space model) */
  readonly latent: boolean;
  /** the prompt tokenizer (word token positions for attention studies) */
  readonly tokenizer: ClipTokenizer;
  /** the trained log-SNR range, [α of the last timestep, α of the first] */
  readonly logSnrRange: LogSnrRange;
  /** the training schedule (timesteps, ᾱ_t, for sampling studies) */
  readonly schedule: NoiseSchedule;
  /** counters of time spent in session.run */
  readonly stats: OnnxModelStats;
  /** the image resolution maps are upsampled to */
  readonly imageSize: { readonly width: number; readonly height: number };
  /** the α of the trained timestep nearest to `logSnr` */
  snapLogSnr(logSnr: number): number;
  /** encodes a prompt once (cached) */
  encode(prompt: string): Promise<OnnxCondition>;
  /** model data → CHW pixels in [−1, 1] (VAE decoder; identity for pixel space) */
  decode(data: Float32Array): Promise<Float32Array>;
  /** DDIM (η = 0) sample in data space from a prompt. */
  generate(prompt: string, options?: GenerateOptions): Promise<Float32Array>;
  /** Deterministic DDIM inversion of an image (path, bytes or data) to x_T. */
  invert(image: ImageInput, prompt: string, options?: InvertOptions): Promise<Float32Array>;
}
