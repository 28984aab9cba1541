/**
 * The public face of a loaded diffusers ONNX export (SD 1.x/2.x, SDXL, SD 3/3.5, FLUX.1): the
 * {@link Denoiser} contract plus what later studies need (tokenizer, schedule or flow convention,
 * VAE decoding, timing counters). Types and tables only: importing this file loads no onnxruntime.
 *
 * @module
 */
import { InvalidArgumentError } from "../../errors.ts";
import type { Condition, CrossAttention, Denoiser, LogSnrRange } from "../denoiser.ts";
import type { NoiseSchedule } from "../sd/schedule.ts";
import type { FlowConvention } from "../flow.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";
import type { PromptTokenizer } from "../sd/prompt-tokenizer.ts";

/**
 * The devices sessions can run on, in one frozen table. `"auto"` tries CUDA, then falls back to
 * the CPU with one warning.
 *
 * @example
 * ```ts
 * import { DEVICES } from "./onnx-model.ts";
 * console.assert(DEVICES.includes("webgpu"));
 * ```
 */
export const DEVICES: readonly ["auto", "cuda", "cpu", "webgpu"] = Object.freeze(
  ["auto", "cuda", "cpu", "webgpu"] as const,
);

/** Where the sessions run (one of {@link DEVICES}). */
export type Device = typeof DEVICES[number];

/**
 * Checks a device name against {@link DEVICES}.
 *
 * @throws {InvalidArgumentError} for any other value
 *
 * @example
 * ```ts
 * import { checkDevice } from "./onnx-model.ts";
 * console.assert(checkDevice("cpu") === "cpu");
 * ```
 */
export function checkDevice(device: unknown): Device {
  if (!(DEVICES as readonly unknown[]).includes(device)) {
    throw new InvalidArgumentError(
      `device must be one of ${DEVICES.map((d) => `"${d}"`).join(", ")}, got ${
        JSON.stringify(device)
      }`,
    );
  }
  return device as Device;
}

/**
 * A prompt encoded by an ONNX model's pipeline: its token ids and what the denoising network is
 * conditioned on.
 */
export interface OnnxCondition extends Condition {
  /** the padded token ids fed to the (first) text encoder */
  readonly inputIds: Int32Array;
  /**
   * the network's `encoder_hidden_states`, [contextLength · hiddenSize]: the text encoder's
   * last_hidden_state (SD 1.x/2.x), the two CLIPs' penultimate states side by side (SDXL), those
   * padded and followed by T5's states (SD 3), T5's states (FLUX.1)
   */
  readonly lastHiddenState: Float32Array;
  /**
   * the network's further per-prompt inputs by name: SDXL's `text_embeds`, SD 3's and FLUX.1's
   * `pooled_projections`
   */
  readonly networkInputs?: ReadonlyMap<string, Float32Array>;
}

/** An edited copy of a model's UNet graph (see `OnnxDiffusionDenoiser.predictNoiseWithOutputs`). */
export interface EditedUnet {
  /** the edited ModelProto; external weights stay where the original's point */
  readonly bytes: Uint8Array;
  /** the extra outputs to return per item */
  readonly outputs: readonly string[];
  /**
   * inputs the edit added, fed from each request's `callInputs`: `"item"` one copy per batch row,
   * `"shared"` once per call (see the network's `NetworkInput`)
   */
  readonly inputs?: readonly { readonly name: string; readonly kind: "item" | "shared" }[];
}

/** Cheap counters of native work, for benchmarks (time outside session.run = overhead). */
export interface OnnxModelStats {
  /** milliseconds inside UNet session.run */
  readonly unetMs: number;
  /** UNet session.run calls */
  readonly unetCalls: number;
  /** items predicted through predictNoise */
  readonly unetItems: number;
  /**
   * rows of batched conditioning (hidden states, pooled vectors) written into UNet inputs; a row
   * already in place from an earlier call is not written again
   */
  readonly unetConditionRows: number;
  /** milliseconds inside text-encoder session.run */
  readonly textEncoderMs: number;
  /** text-encoder session.run calls (one per prompt not in the cache) */
  readonly textEncoderCalls: number;
  /** prompts whose encoding is cached now (at most `promptCacheSize`) */
  readonly cachedPrompts: number;
  /** milliseconds inside VAE-encoder session.run (0 for a pixel-space model) */
  readonly vaeEncoderMs: number;
  /** VAE-encoder session.run calls (one per image prepared) */
  readonly vaeEncoderCalls: number;
}

/**
 * A diffusers ONNX export behind the {@link Denoiser} contract (made by `loadOnnxDenoiser`;
 * `loadModel` wraps it as a Model). SD 1.x/2.x and SDXL have a trained `schedule` and
 * `snapLogSnr`; SD 3 and FLUX.1 are flow models (`flow`) evaluated at any t in their trained range.
 *
 * @example
 * ```ts
 * import { loadOnnxDenoiser } from "./load-model.ts";
 * const model = await loadOnnxDenoiser("fixtures/models/sd-vpred", { device: "cpu" });
 * const condition = await model.encode("a red circle");
 * console.assert(condition.lastHiddenState.length === 77 * 8);
 * console.assert(model.schedule?.predictionType === "v_prediction");
 * await model.dispose();
 * ```
 */
export interface OnnxDenoiser extends Denoiser {
  /** the device the sessions run on */
  readonly device: Exclude<Device, "auto">;
  /** true when the data are VAE latents (false: a pixel-space model) */
  readonly latent: boolean;
  /** the (first, CLIP) prompt tokenizer (word token positions for attention studies) */
  readonly tokenizer: ClipTokenizer;
  /**
   * every text encoder its pipeline runs, in order, with its tokenizer (SD 1.x/2.x: one CLIP;
   * SDXL: two; SD 3: two CLIPs and T5; FLUX.1: CLIP and T5)
   */
  readonly encoders: readonly {
    readonly name: string;
    readonly tokenizer: PromptTokenizer;
  }[];
  /** the trained log-SNR range (a schedule's timesteps, or a flow model's trained t) */
  readonly logSnrRange: LogSnrRange;
  /** the training schedule (timesteps, ᾱ_t, for sampling studies); absent for a flow model */
  readonly schedule?: NoiseSchedule;
  /** a flow model's convention (SD 3, FLUX.1) */
  readonly flow?: FlowConvention;
  /** counters of time spent in session.run */
  readonly stats: OnnxModelStats;
  /** the image resolution maps are upsampled to */
  readonly imageSize: { readonly width: number; readonly height: number };
  /** the α of the trained timestep nearest to `logSnr` (absent for a flow model) */
  readonly snapLogSnr?: (logSnr: number) => number;
  /** encodes a prompt once (cached) */
  encode(prompt: string): Promise<OnnxCondition>;
  /** model data → CHW pixels in [−1, 1] (VAE decoder; identity for pixel space) */
  decode(data: Float32Array): Promise<Float32Array>;
  /** cross-attention probabilities of the UNet (read from its graph on first use) */
  readonly attention: CrossAttention;
  /** the UNet's .onnx file */
  readonly unetPath: string;
}
