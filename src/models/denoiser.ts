/**
 * The one small interface every backend implements: the exact oracles, the ONNX Stable Diffusion
 * backend and the trained shapes model all look the same to the estimators.
 *
 * @module
 */
import type { Query } from "../query/query.ts";
import { InvalidImageError } from "../errors.ts";
import type { GenerateOptions, InvertOptions } from "../generation/ddim.ts";

/** Shape of one data item (an image, or a latent for latent diffusion): channels, height, width. */
export type Shape = readonly [channels: number, height: number, width: number];

/** The closed interval of log-SNR values a model was trained on. */
export interface LogSnrRange {
  /** lowest trained log-SNR (most noise) */
  readonly min: number;
  /** highest trained log-SNR (least noise) */
  readonly max: number;
}

/**
 * A prompt after the model has encoded it (text-encoder output, or for the oracle the set of known
 * words). Backends extend it with what they need; the estimators only read `prompt`.
 */
export interface Condition {
  /** the prompt this condition was encoded from */
  readonly prompt: string;
}

/** One batched noise-prediction request: `size` items, each a noisy datum, a log-SNR and a condition. */
export interface NoiseBatch {
  /** noisy data x_α, item-major, `size · d` values where d = c·h·w */
  readonly noisy: Float32Array;
  /** log-SNR α of each item (length `size`) */
  readonly logSnr: Float64Array;
  /** condition of each item (length `size`) */
  readonly conditions: readonly Condition[];
}

/**
 * Anything an image can be given as. The oracles take a `Float32Array` of length c·h·w; image
 * backends also take a file path, PNG/JPEG bytes or a sharp instance.
 */
export type ImageInput = Float32Array | string | Uint8Array | { toBuffer: unknown };

/**
 * A text-conditional denoising diffusion model in the variance-preserving parameterisation
 * `x_α = sqrt(σ(α))·x + sqrt(σ(−α))·ε`.
 */
export interface Model {
  /** a short human-readable name */
  readonly name: string;
  /** shape of the data the model denoises (c, h, w) */
  readonly shape: Shape;
  /** trained log-SNR range, if the model has one (sets the default log-SNR sampling) */
  readonly logSnrRange?: LogSnrRange;
  /** preferred number of items per {@link Model.predictNoise} call */
  readonly batchSize: number;
  /**
   * True when one call can only evaluate one noise level (a scalar timestep input). The estimators
   * then put draws that share an α into the same call so that costs no extra calls.
   */
  readonly sharedLogSnr: boolean;
  /** image size that maps are upsampled to for display (latent models); absent: the data size */
  readonly imageSize?: { readonly width: number; readonly height: number };
  /**
   * Maps a continuous log-SNR to the one the model really evaluates (the nearest trained timestep).
   * The estimators noise the data at the snapped value, so noise level and timestep always agree.
   */
  snapLogSnr?(logSnr: number): number;
  /** Encodes a prompt once (implementations cache by prompt); `""` is the null prompt. */
  encode(prompt: string): Promise<Condition>;
  /** Predicts the noise ε̂(x_α, α | condition) for every item of the batch (`size · d` values). */
  predictNoise(batch: NoiseBatch): Promise<Float32Array>;
  /** Turns an image input into validated model data (length c·h·w), e.g. a VAE latent. */
  prepare(image: ImageInput): Promise<Float32Array>;
  /** Starts a lazy information query about an image: `model.info(x).given(prompt).total()`. */
  info(image: ImageInput): Query;
  /** Releases native resources (ONNX sessions). Safe to call twice. */
  dispose(): Promise<void>;
  /** DDIM (η = 0) sample in data space from a prompt (`generate` in src/generation/ddim.ts). */
  generate?(prompt: string, options?: GenerateOptions): Promise<Float32Array>;
  /** Deterministic DDIM inversion of an image to x_T (`invert` in src/generation/ddim.ts). */
  invert?(image: ImageInput, prompt: string, options?: InvertOptions): Promise<Float32Array>;
}

/**
 * Number of values in one datum of the given shape.
 *
 * @example
 * ```ts
 * import { shapeSize } from "./denoiser.ts";
 * console.assert(shapeSize([4, 64, 64]) === 16384);
 * ```
 */
export function shapeSize(shape: Shape): number {
  return shape[0] * shape[1] * shape[2];
}

/**
 * Checks that data fit a model: a Float32Array of c·h·w finite values. Returns the data.
 *
 * @example
 * ```ts
 * import { checkModelData } from "./denoiser.ts";
 * checkModelData([1, 1, 2], new Float32Array([0, 1]), "image");
 * ```
 */
export function checkModelData(shape: Shape, data: Float32Array, what: string): Float32Array {
  const d = shapeSize(shape);
  if (!(data instanceof Float32Array) || data.length !== d) {
    const got = data instanceof Float32Array ? `${data.length} values` : typeof data;
    throw new InvalidImageError(
      `${what}: expected a Float32Array of ${d} values (shape ${shape.join("×")}), got ${got}`,
    );
  }
  for (let i = 0; i < d; i++) {
    if (!Number.isFinite(data[i])) {
      throw new InvalidImageError(`${what}: value ${i} is ${data[i]}; expected finite numbers`);
    }
  }
  return data;
}
