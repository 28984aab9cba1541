/**
 * A diffusers ONNX export as a {@link Denoiser}, whatever its family: the family's pipeline
 * (sd-pipeline.ts, sdxl-pipeline.ts, sd3-pipeline.ts, flux-pipeline.ts) turns a prompt into the
 * network's conditioning, the VAE turns an image into the latent, and time is read as the family
 * reads it — the trained schedule's nearest timestep (SD 1.x/2.x, SDXL), or flow matching's
 * (α, x_α) → (t, x_t) and v̂ → ε̂ (SD 3, FLUX.1).
 *
 * @module
 */
import { InvalidArgumentError, InvalidImageError } from "../../errors.ts";
import { type ImageSource, loadImagePixels } from "../../images/load-image.ts";
import {
  type AttentionPrediction,
  type CrossAttention,
  imageArray,
  type ImageInput,
  type LogSnrRange,
  type ModelIdentity,
  type NoiseBatch,
  type PromptTokens,
  type Shape,
  type WordTokens,
} from "../denoiser.ts";
import { type FlowConvention, flowLogSnrRange, flowPredictNoise } from "../flow.ts";
import { hashModelFolder } from "../sd/identity.ts";
import { createHash } from "node:crypto";
import { ModelLoadError } from "../../errors.ts";
import type { FlowTiming, OnnxPipeline, PipelineEncoder } from "./pipeline.ts";
import { ONNXRUNTIME_VERSION } from "./session.ts";
import type { NoiseSchedule } from "../sd/schedule.ts";
import type { WebGpuAdapter } from "./webgpu.ts";
import type { LogSnrProfile } from "../../numerics/proposal.ts";
import type {
  Device,
  EditedUnet,
  OnnxCondition,
  OnnxDenoiser,
  OnnxModelStats,
} from "./onnx-model.ts";
import { OnnxCrossAttention } from "./cross-attention.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";
import type { InferenceSession } from "npm:onnxruntime-node@1.30.0";
import { type NetworkSpec, OnnxUnet, type UnetPrediction, type UnetRequest } from "./unet.ts";
import type { OnnxVaeDecoder, OnnxVaeEncoder } from "./vae.ts";

/** The parts an {@link OnnxDiffusionDenoiser} is assembled from (see `loadOnnxDenoiser`). */
export interface OnnxModelParts {
  /** display name (the folder's base name) */
  readonly name: string;
  /** the export folder (what the identity hashes) */
  readonly dir: string;
  /** the hub repository and commit the folder came from, for a hub model */
  readonly source?: { readonly repo: string; readonly revision: string; readonly commit: string };
  /** the folder's calibrated log-SNR profile, if any */
  readonly logSnrProfile?: LogSnrProfile;
  /** the device the sessions run on */
  readonly device: Exclude<Device, "auto">;
  /** the WebGPU adapter, on device "webgpu" */
  readonly adapter?: WebGpuAdapter;
  /** the family's pipeline: tokenizers, text encoders, conditioning, time */
  readonly pipeline: OnnxPipeline;
  /** the denoising network (UNet or transformer) */
  readonly unet: OnnxUnet;
  /** VAE encoder (absent: pixel-space model) */
  readonly vaeEncoder?: OnnxVaeEncoder;
  /** VAE decoder, created on first use (absent: pixel-space model) */
  readonly vaeDecoder?: () => Promise<OnnxVaeDecoder>;
  /** shape of the data the UNet denoises */
  readonly shape: Shape;
  /** image resolution in pixels (square) */
  readonly resolution: number;
  /** preferred items per predictNoise call */
  readonly batchSize: number;
  /** most prompt encodings kept (least recently used ones are dropped first) */
  readonly promptCacheSize: number;
  /** creates a UNet session from an edited copy of the UNet graph (same device, same weights) */
  readonly unetFromBytes?: (bytes: Uint8Array) => Promise<InferenceSession>;
}

/**
 * A diffusers ONNX export (SD 1.x/2.x, SDXL, SD 3/3.5, FLUX.1) behind the {@link Denoiser}
 * contract. Create it with `loadOnnxDenoiser(dir)` (or `loadModel(dir)`, which wraps it as a
 * Model).
 *
 * @example
 * ```ts
 * import { loadOnnxDenoiser } from "./load-model.ts";
 * const denoiser = await loadOnnxDenoiser("fixtures/models/sd-vpred", { device: "cpu" });
 * console.assert(denoiser.latent && denoiser.schedule?.length === 1000);
 * await denoiser.dispose();
 * ```
 */
export class OnnxDiffusionDenoiser implements OnnxDenoiser {
  /** display name */
  readonly name: string;
  /** (C, H, W) of the denoised data: the latent, or the pixels of a pixel-space model */
  readonly shape: Shape;
  /**
   * the trained log-SNR range: [α of the last timestep, α of the first], or a flow model's
   * [α(t_max), α(t_min)]
   */
  readonly logSnrRange: LogSnrRange;
  /** preferred items per predictNoise call */
  readonly batchSize: number;
  /** true when the UNet takes one scalar timestep per call */
  readonly sharedLogSnr: boolean;
  /** the image resolution maps are upsampled to */
  readonly imageSize: { readonly width: number; readonly height: number };
  /** the (first, CLIP) prompt tokenizer (word token positions for attention studies) */
  readonly tokenizer: ClipTokenizer;
  /** every text encoder the pipeline runs, in its order, with its tokenizer */
  readonly encoders: readonly PipelineEncoder[];
  /** the training schedule (SD 1.x/2.x, SDXL; absent for a flow model) */
  readonly schedule?: NoiseSchedule;
  /** a flow model's convention: training law, trained range, scheduler (SD 3, FLUX.1) */
  readonly flow?: FlowConvention;
  /** the α of the trained timestep nearest to `logSnr` (absent for a flow model: t is continuous) */
  readonly snapLogSnr?: (logSnr: number) => number;
  /** the device the sessions run on */
  readonly device: Exclude<Device, "auto">;
  /** true when the data are VAE latents */
  readonly latent: boolean;
  /** cross-attention probabilities of the UNet (its graph is read on first use) */
  readonly attention: CrossAttention;
  /** a transformer's concept-attention maps (SD 3, FLUX.1) */
  readonly conceptAttention?: CrossAttention;
  /** the folder's calibrated log-SNR profile, if it has one (the default proposal then) */
  readonly logSnrProfile?: LogSnrProfile;

  readonly #parts: OnnxModelParts;
  readonly #conditions = new Map<string, Promise<OnnxCondition>>();
  /** free scratch buffers of a flow model's packed latents (FLUX.1) */
  readonly #scratch: Float32Array[] = [];
  readonly #editedUnets = new Map<EditedUnet, Promise<OnnxUnet>>();
  #decoder: Promise<OnnxVaeDecoder> | undefined;
  #identity: Promise<ModelIdentity> | undefined;
  #items = 0;
  #disposed = false;

  /** @param parts sessions and metadata assembled by `loadModel` */
  constructor(parts: OnnxModelParts) {
    this.#parts = parts;
    const { pipeline } = parts;
    this.name = parts.name;
    this.shape = parts.shape;
    if (pipeline.schedule) {
      const schedule = pipeline.schedule;
      this.schedule = schedule;
      this.logSnrRange = schedule.range;
      this.snapLogSnr = (logSnr: number) => schedule.snapLogSnr(logSnr);
    } else if (pipeline.flow) {
      this.flow = pipeline.flow.convention;
      this.logSnrRange = flowLogSnrRange(this.flow);
    } else {
      throw new ModelLoadError(`${parts.dir}: its pipeline has neither a schedule nor flow timing`);
    }
    this.batchSize = parts.batchSize;
    this.sharedLogSnr = parts.unet.scalarTimestep;
    this.imageSize = { width: parts.resolution, height: parts.resolution };
    this.tokenizer = pipeline.tokenizer;
    this.encoders = pipeline.encoders;
    this.device = parts.device;
    this.latent = parts.vaeEncoder !== undefined;
    this.attention = pipeline.attentionUnavailable
      ? unavailableAttention(pipeline.attentionUnavailable, pipeline.tokenizer)
      : new OnnxCrossAttention(this, pipeline.jointAttention);
    if (pipeline.jointAttention) {
      this.conceptAttention = new OnnxCrossAttention(this, pipeline.jointAttention, "concept");
    }
    if (parts.logSnrProfile) this.logSnrProfile = parts.logSnrProfile;
  }

  /** Counters of time spent in session.run. */
  get stats(): OnnxModelStats {
    return {
      unetMs: this.#parts.unet.runMs,
      unetCalls: this.#parts.unet.runs,
      unetItems: this.#items,
      unetConditionRows: this.#parts.unet.conditionRowsWritten,
      textEncoderMs: this.#parts.pipeline.textEncoders.reduce((ms, e) => ms + e.runMs, 0),
      textEncoderCalls: this.#parts.pipeline.textEncoders.reduce((n, e) => n + e.runs, 0),
      cachedPrompts: this.#conditions.size,
      vaeEncoderMs: this.#parts.vaeEncoder?.runMs ?? 0,
      vaeEncoderCalls: this.#parts.vaeEncoder?.runs ?? 0,
    };
  }

  /**
   * The prompt's words (indices) that no text encoder sees: wholly past every encoder's context
   * (CLIP's 77 tokens; a T5 beside it reads further).
   */
  truncatedWords(prompt: string): number[] {
    const seen = new Set<number>();
    for (const { tokenizer } of this.#parts.pipeline.encoders) {
      tokenizer.wordPositions(prompt).forEach((w, i) => w.positions.length && seen.add(i));
    }
    return this.tokenizer.wordPositions(prompt).flatMap((_, i) => seen.has(i) ? [] : [i]);
  }

  /**
   * How each text encoder reads the prompt, in the pipeline's order (SD 1.x/2.x: its CLIP; SDXL:
   * both CLIPs; SD 3: both CLIPs and T5; FLUX.1: CLIP and T5), each with its own context.
   *
   * @throws {PromptError} the prompt holds a special token of an encoder's tokenizer
   */
  encoderTokens(prompt: string): PromptTokens[] {
    return this.#parts.pipeline.encoders.map(({ name, tokenizer }) =>
      tokenizer.promptTokens(prompt, name)
    );
  }

  /**
   * Encodes a prompt with the text encoder, once per distinct prompt while it stays among the
   * `promptCacheSize` most recently used (an SD 2.x encoding is about 315 KB).
   */
  encode(prompt: string): Promise<OnnxCondition> {
    this.#checkOpen();
    if (typeof prompt !== "string") {
      throw new InvalidArgumentError(`prompt must be a string, got ${typeof prompt}`);
    }
    let condition = this.#conditions.get(prompt);
    if (condition) {
      this.#conditions.delete(prompt); // most recently used goes last
    } else {
      // a typed "<|endoftext|>" (or T5's "</s>") is no word, for any encoder
      for (const { tokenizer } of this.#parts.pipeline.encoders) {
        tokenizer.refuseSpecialTokens(prompt);
      }
      condition = this.#encodeUncached(prompt);
      // a failed encoding is not cached, so a retry can succeed
      condition.catch(() => this.#conditions.delete(prompt));
    }
    this.#conditions.set(prompt, condition);
    while (this.#conditions.size > this.#parts.promptCacheSize) {
      this.#conditions.delete(this.#conditions.keys().next().value!);
    }
    return condition;
  }

  #encodeUncached(prompt: string): Promise<OnnxCondition> {
    return this.#parts.pipeline.encode(prompt);
  }

  /** The UNet's .onnx file (graph tools such as attention maps read and edit a copy of it). */
  get unetPath(): string {
    return this.#parts.unet.source;
  }

  /**
   * Predicts ε̂ for every item: each item's α is mapped to its nearest trained timestep, or for a
   * flow model to t = σ(−α/2) and x_t = s·x_α, whose velocity gives ε̂ = x_t + (1 − t)·v̂.
   */
  async predictNoise(batch: NoiseBatch): Promise<Float32Array> {
    const flow = this.#parts.pipeline.flow;
    const result = flow
      ? await this.#predictFlow(batch, flow)
      : await this.#parts.unet.predict(this.#unetRequest(batch), this.shape);
    this.#items += batch.logSnr.length;
    return result;
  }

  /**
   * A flow model's ε̂: src/models/flow.ts maps (α, x_α) to (t, x_t) and v̂ back to ε̂; between
   * them the network is fed x_t in its layout (FLUX.1: packed as it is scaled, unpacked as ε̂ is
   * computed) and each t as its timestep. x_t goes into reused scratch buffers, since SD 3's and
   * FLUX.1's latents are a megabyte per item and a fresh buffer's first writes cost more than the
   * pass; ε̂ is written over the network's output.
   */
  async #predictFlow(
    batch: NoiseBatch,
    flow: FlowTiming,
    network: Pick<OnnxUnet, "predict"> = this.#parts.unet,
  ): Promise<Float32Array> {
    const scratch: Float32Array[] = [];
    const buffer = (length: number) => {
      const index = this.#scratch.findIndex((b) => b.length === length);
      const taken = index < 0 ? new Float32Array(length) : this.#scratch.splice(index, 1)[0];
      scratch.push(taken);
      return taken;
    };
    try {
      return await flowPredictNoise(batch, async ({ xt, t, conditions }) => {
        const request = this.#networkRequest(
          { ...batch, noisy: xt, conditions },
          Array.from(t, flow.timestep),
        );
        // the network's own output array: flowPredictNoise writes ε̂ over it
        return await network.predict(request, flow.networkShape ?? this.shape);
      }, { layout: flow.layout, scratch: buffer });
    } finally {
      // flowPredictNoise has read x_t into its ε̂: the buffers are free again
      this.#scratch.push(...scratch);
      this.#scratch.splice(0, Math.max(0, this.#scratch.length - 4));
    }
  }

  /**
   * ε̂ as {@link OnnxDiffusionDenoiser.predictNoise}, plus each item's share of the extra outputs of
   * an edited copy of the UNet graph (e.g. cross-attention probabilities exposed as outputs). The
   * second UNet session is created from `graph.bytes` on first use, on this model's device, with
   * the weights read from the original UNet's folder; it is kept for later calls with the same
   * `graph` object and released by dispose(). Inputs the edit added (`graph.inputs`) are fed from
   * `callInputs`.
   */
  async predictNoiseWithOutputs(
    batch: NoiseBatch,
    graph: EditedUnet,
    callInputs?: UnetRequest["callInputs"],
  ): Promise<UnetPrediction> {
    let unet = this.#editedUnets.get(graph);
    if (!unet) {
      unet = this.#openEditedUnet(graph);
      unet.catch(() => this.#editedUnets.delete(graph));
      this.#editedUnets.set(graph, unet);
    }
    const edited = await unet;
    const flow = this.#parts.pipeline.flow;
    let result: UnetPrediction;
    if (flow) {
      // a flow model's ε̂ comes through the same conversion; the extra outputs are kept as they are
      let outputs: UnetPrediction["outputs"] = [];
      const noise = await this.#predictFlow(batch, flow, {
        predict: async (request, shape) => {
          const prediction = await edited.predictWithOutputs({ ...request, callInputs }, shape);
          outputs = prediction.outputs;
          return prediction.noise;
        },
      });
      result = { noise, outputs };
    } else {
      const request = { ...this.#unetRequest(batch), callInputs };
      result = await edited.predictWithOutputs(request, this.shape);
    }
    this.#items += batch.logSnr.length;
    return result;
  }

  async #openEditedUnet(graph: EditedUnet): Promise<OnnxUnet> {
    const original = this.#parts.unet;
    if (!this.#parts.unetFromBytes) {
      throw new InvalidArgumentError(
        `model ${this.name} was assembled without unetFromBytes; load it with loadModel() to run ` +
          `an edited UNet graph`,
      );
    }
    const session = await this.#parts.unetFromBytes(graph.bytes);
    try {
      return new OnnxUnet(
        session,
        `${original.source} (edited)`,
        this.schedule,
        this.batchSize,
        graph.outputs,
        withRequestInputs(this.#parts.pipeline.network, graph.inputs ?? []),
      );
    } catch (error) {
      await session.release();
      throw error;
    }
  }

  /** The network request of a trained-schedule model: each α at its nearest trained timestep. */
  #unetRequest(batch: NoiseBatch): UnetRequest {
    const schedule = this.schedule!;
    const timesteps = Array.from(batch.logSnr, (a) => schedule.nearestTimestep(a));
    return this.#networkRequest(batch, timesteps);
  }

  /** A network request: the samples as given, each item's timestep, its condition's inputs. */
  #networkRequest(
    batch: Pick<NoiseBatch, "noisy" | "conditions" | "finiteChecked">,
    timesteps: readonly number[],
  ): UnetRequest {
    this.#checkOpen();
    const n = timesteps.length;
    if (batch.conditions.length !== n) {
      throw new InvalidArgumentError(
        `batch has ${n} log-SNR values but ${batch.conditions.length} conditions; expected equal counts`,
      );
    }
    const hiddenStates = batch.conditions.map((condition, i) => {
      const hidden = (condition as Partial<OnnxCondition>).lastHiddenState;
      if (!(hidden instanceof Float32Array)) {
        throw new InvalidArgumentError(
          `condition ${i} ("${condition.prompt}") was not made by this model's encode(); ` +
            `expected an OnnxCondition with lastHiddenState`,
        );
      }
      return hidden;
    });
    const names = [...this.#parts.unet.extraInputs.values()]
      .filter((input) => input.kind === "condition").map((input) => input.name);
    const conditionInputs = new Map(names.map((name) => [
      name,
      batch.conditions.map((condition) => {
        const values = (condition as Partial<OnnxCondition>).networkInputs?.get(name);
        if (!values) {
          throw new InvalidArgumentError(
            `condition "${condition.prompt}" has no ${name}; expected a condition made by this ` +
              `model's encode()`,
          );
        }
        return values;
      }),
    ]));
    return {
      noisy: batch.noisy,
      timesteps,
      hiddenStates,
      contextLength: this.#parts.pipeline.contextLength,
      conditionInputs,
      finiteChecked: batch.finiteChecked,
    };
  }

  /**
   * Image → model data: decode, RGB, resize the shorter side and centre-crop to the resolution,
   * scale to [−1, 1], then VAE-encode (mean × scaling factor). A pixel-space model returns the
   * pixels. A bare Float32Array is taken as model data when it has C·H·W values, or as CHW pixels
   * in [−1, 1] when it has 3·R·R values (pixels beyond ±1.5 are refused: another scale, not an
   * image); when both counts are equal on a latent model, it must say which (`{ pixels }` or
   * `{ data }`).
   */
  async prepare(image: ImageInput): Promise<Float32Array> {
    this.#checkOpen();
    const resolution = this.imageSize.width;
    const given = imageArray(image);
    if (!given) {
      const pixels = await loadImagePixels(image as ImageSource, resolution, resolution);
      return await this.#encodePixels(pixels);
    }
    const { array } = given;
    checkFinite(array, "image array");
    // model data as given: a latent has no fixed range, and a pixel-space model's own samples
    // (what generate returns, what invert takes back) need not keep to [−1, 1] either
    if (this.#arrayHolds(given) === "data") return array.slice();
    checkPixelRange(array, "image array (pixels)");
    return await this.#encodePixels(array);
  }

  /** What an image array holds, from its tag or its length; refuses a length that fits neither. */
  #arrayHolds(given: NonNullable<ReturnType<typeof imageArray>>): "pixels" | "data" {
    const [c, h, w] = this.shape;
    const resolution = this.imageSize.width;
    const dataSize = c * h * w, pixelSize = 3 * resolution * resolution;
    const { array, holds } = given;
    const data = `model data ${c}×${h}×${w}`, pixels = `pixels 3×${resolution}×${resolution}`;
    if (holds !== "either") {
      const expected = holds === "data" ? dataSize : pixelSize;
      if (array.length !== expected) {
        throw new InvalidImageError(
          `image input { ${holds} } has ${array.length} values; expected ${expected} (${
            holds === "data" ? data : `${pixels} in [−1, 1]`
          })`,
        );
      }
      return holds;
    }
    if (array.length === dataSize && array.length === pixelSize && this.#parts.vaeEncoder) {
      throw new InvalidImageError(
        `image array has ${array.length} values, which is both this model's ${data} and its ` +
          `${pixels}; say which: model.info({ pixels: array }) for CHW pixels in [−1, 1] (the VAE ` +
          `encodes them) or model.info({ data: array }) for model data (what generate returns)`,
      );
    }
    if (array.length === dataSize) return "data";
    if (array.length === pixelSize) return "pixels";
    throw new InvalidImageError(
      `image array has ${array.length} values; expected ${dataSize} (${data}) or ${pixelSize} ` +
        `(${pixels} in [−1, 1])`,
    );
  }

  async #encodePixels(pixels: Float32Array): Promise<Float32Array> {
    const encoder = this.#parts.vaeEncoder;
    if (!encoder) return pixels;
    const { latent } = await encoder.encode(pixels, this.imageSize.width);
    return latent;
  }

  /**
   * Decodes model data back to CHW pixels in [−1, 1] (divides by the scaling factor and runs the
   * VAE decoder; identity for a pixel-space model).
   */
  async decode(data: Float32Array): Promise<Float32Array> {
    this.#checkOpen();
    if (!this.#parts.vaeDecoder) return data.slice();
    this.#decoder ??= this.#parts.vaeDecoder();
    const { pixels } = await (await this.#decoder).decode(data, this.shape);
    return pixels;
  }

  /**
   * The export's identity: a SHA-256 over its model files (computed once; seconds for an SD-sized
   * UNet), the device it runs on.
   */
  identity(): Promise<ModelIdentity> {
    const settings = this.#parts.pipeline.settings;
    const pipeline = Object.keys(settings).length > 0
      ? { family: this.#parts.pipeline.title, ...settings }
      : undefined;
    this.#identity ??= hashModelFolder(this.#parts.dir).then((files) => ({
      name: this.name,
      backend: "onnx",
      // the pipeline's settings are part of the model: another guidance is another function
      sha256: pipeline ? sha256Of(`${files}\u0000${canonicalJson(pipeline)}`) : files,
      ...(pipeline ? { pipeline } : {}),
      ...(this.#parts.source ? { source: this.#parts.source } : {}),
      runtime: `onnxruntime-node ${ONNXRUNTIME_VERSION}, ${this.device}${
        this.#parts.adapter
          ? ` (${this.#parts.adapter.description}${
            this.#parts.adapter.fallback ? ", software" : ""
          })`
          : ""
      }`,
    }));
    return this.#identity;
  }

  /** Releases every ONNX session. Safe to call twice. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const sessions = [
      ...this.#parts.pipeline.textEncoders.map((encoder) => encoder.session),
      this.#parts.unet.session,
    ];
    if (this.#parts.vaeEncoder) sessions.push(this.#parts.vaeEncoder.session);
    if (this.#decoder) sessions.push((await this.#decoder).session);
    for (const edited of this.#editedUnets.values()) {
      const unet = await edited.catch(() => undefined);
      if (unet) sessions.push(unet.session);
    }
    this.#editedUnets.clear();
    this.#conditions.clear();
    await Promise.all(sessions.map((session) => session.release()));
  }

  #checkOpen(): void {
    if (this.#disposed) {
      throw new InvalidArgumentError(`model ${this.name} was disposed; load it again to use it`);
    }
  }
}

/**
 * How far past [−1, 1] a pixel array may reach: generated pictures overshoot a little (DDIM
 * samples of shapes-tiny reach ±1.04), so feeding one back in must pass, while data on another
 * scale (0…255, or anything near 5) is refused instead of being encoded as if it were an image.
 */
const PIXEL_SLACK = 0.5;

/** Pixels must lie in [−1, 1] (within {@link PIXEL_SLACK}); the first value outside is named. */
function checkPixelRange(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (Math.abs(values[i]) > 1 + PIXEL_SLACK) {
      const [low, high] = values.reduce(
        ([lo, hi], v) => [Math.min(lo, v), Math.max(hi, v)],
        [Infinity, -Infinity],
      );
      throw new InvalidImageError(
        `${what} has ${values[i]} at index ${i} (its values run from ${low} to ${high}); ` +
          `expected pixels in [−1, 1] (generated samples may overshoot to ±${1 + PIXEL_SLACK}): ` +
          `rescale 0…255 values with v / 127.5 − 1, or 0…1 values with 2·v − 1`,
      );
    }
  }
}

function checkFinite(values: Float32Array, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw new InvalidImageError(`${what} has ${values[i]} at index ${i}; expected finite values`);
    }
  }
}

/** The network's spec with an edited graph's own inputs, fed from each request. */
function withRequestInputs(
  spec: NetworkSpec,
  inputs: NonNullable<EditedUnet["inputs"]>,
): NetworkSpec {
  if (inputs.length === 0) return spec;
  const added = inputs.map((input) => ({ ...input, fromRequest: true }));
  return { ...spec, extraInputs: [...spec.extraInputs ?? [], ...added] };
}

/** SHA-256 (hex) of a string. */
function sha256Of(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** JSON with keys sorted, so equal settings hash alike. */
function canonicalJson(value: Record<string, unknown>): string {
  return JSON.stringify(
    Object.fromEntries(Object.entries(value).sort(([a], [b]) => a < b ? -1 : 1)),
  );
}

/**
 * The attention capability of a network whose cross-attention cannot be read (the transformers):
 * `supported()` is false and `unavailable` says why; `predict` refuses with that reason.
 */
function unavailableAttention(
  reason: string,
  tokenizer: ClipTokenizer,
): CrossAttention {
  return {
    unavailable: reason,
    contextLength: tokenizer.contextLength,
    supported: () => false,
    wordTokens: (prompt: string): readonly WordTokens[] => tokenizer.wordPositions(prompt),
    predict: (): Promise<AttentionPrediction> =>
      Promise.reject(new ModelLoadError(`attention maps are ${reason}`)),
  };
}
