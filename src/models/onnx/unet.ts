/**
 * The denoising UNet of an SD ONNX export: `sample` [B,C,H,W], `timestep` (int64 [B], float [B],
 * float scalar [] or float16), `encoder_hidden_states` [B,77,hidden] → `out_sample` (REFERENCE §5).
 * Every dtype and shape comes from the session metadata.
 *
 * @module
 */
import { type InferenceSession, Tensor } from "npm:onnxruntime-node@1.30.0";
import { InvalidArgumentError, ModelLoadError, ModelRuntimeError } from "../../errors.ts";
import { fromFloat16Bits, toFloat16Bits } from "./float16.ts";
import { type NoiseSchedule, vToEpsilon } from "../sd/schedule.ts";
import { describeTensors, inputInfo, outputInfo, type TensorInfo } from "./session.ts";
import { matchTensor, matchTensors, UNET_INPUTS, UNET_OUTPUT } from "./tensor-roles.ts";
import { warn } from "../../warnings.ts";

/** UNet inputs of other model families, refused with what they are. */
const UNSUPPORTED_INPUTS: readonly (readonly [string, string])[] = [
  [
    "timestep_cond",
    "an LCM (latent consistency) UNet: timestep_cond is its distilled guidance-scale embedding, " +
    "so its noise predictions are guided ones, not the conditional ε̂(x, α | prompt) the " +
    "estimators need; use the base model's export",
  ],
  ["text_embeds", "an SDXL UNet (pooled text embeddings text_embeds); SDXL is not supported yet"],
  ["time_ids", "an SDXL UNet (micro-conditioning time_ids); SDXL is not supported yet"],
];

function refuseUnsupportedInputs(inputs: ReadonlyMap<string, TensorInfo>, source: string): void {
  for (const [name, what] of UNSUPPORTED_INPUTS) {
    if (inputs.has(name)) {
      throw new ModelLoadError(
        `${source}: has the input ${name}, i.e. ${what} (infodiff supports Stable Diffusion ` +
          `1.x/2.x UNets: sample, timestep, encoder_hidden_states)`,
      );
    }
  }
}

/** One UNet request: items share nothing but the model; each has its own timestep and text. */
export interface UnetRequest {
  /** noisy samples, item-major, `n · C·H·W` values */
  readonly noisy: Float32Array;
  /** trained timestep index of each item (length n) */
  readonly timesteps: Int32Array;
  /** last_hidden_state of each item's prompt, `contextLength · hiddenSize` values each */
  readonly hiddenStates: readonly Float32Array[];
  /** token positions per hidden state (the tokenizer's context length, 77 for CLIP) */
  readonly contextLength: number;
  /** the caller checks the output's finiteness where it reads it: skip the pass here */
  readonly finiteChecked?: boolean;
}

/** One item's share of an extra UNet output (e.g. attention probabilities). */
export interface ItemOutput {
  /** the item's values, row-major (a view into the call's output) */
  readonly data: Float32Array;
  /** the output's dims with the first (batch-major) axis divided by the call's batch */
  readonly dims: readonly number[];
}

/** Noise predictions plus, per item, the extra outputs the session was asked for. */
export interface UnetPrediction {
  /** noise predictions, one `C·H·W` block per item */
  readonly noise: Float32Array;
  /** per item: extra output name → the item's share */
  readonly outputs: ReadonlyMap<string, ItemOutput>[];
}

const FLOAT_TYPES = ["float32", "float16"];

/**
 * Runs an SD UNet session in batches, converting v-predictions to noise predictions.
 *
 * @example
 * ```ts ignore
 * import { OnnxUnet } from "./unet.ts";
 * const unet = new OnnxUnet(session, "unet/model.onnx", schedule, 8);
 * const eps = await unet.predict({ noisy, timesteps, hiddenStates });
 * ```
 */
export class OnnxUnet {
  /** the session (owned by the model, which disposes it) */
  readonly session: InferenceSession;
  /** metadata of `sample` */
  readonly sample: TensorInfo;
  /** metadata of `timestep` */
  readonly timestep: TensorInfo;
  /** metadata of `encoder_hidden_states` */
  readonly hiddenInput: TensorInfo;
  /** what the export calls its three inputs (exports name them differently, or not at all) */
  readonly inputNames: {
    readonly sample: string;
    readonly timestep: string;
    readonly hidden: string;
  };
  /** the output's name (`out_sample` in SD exports) */
  readonly outputName: string;
  /** true when the timestep is one value per call (shape [] or [1]) */
  readonly scalarTimestep: boolean;
  /** the batch dimension when the export fixed it (items are padded up to it), else undefined */
  readonly fixedBatch: number | undefined;
  /** items per session.run */
  readonly batchSize: number;
  /** total milliseconds in session.run */
  runMs = 0;
  /** number of session.run calls */
  runs = 0;
  readonly #float16Cache = new WeakMap<Float32Array, Uint16Array>();

  /**
   * @param session a UNet session
   * @param source its path, for messages
   * @param schedule the training schedule (for ᾱ_t in the v → ε conversion)
   * @param batchSize preferred items per call
   * @param extraOutputs further outputs to return per item (an edited graph's, see predictWithOutputs)
   */
  constructor(
    session: InferenceSession,
    readonly source: string,
    readonly schedule: NoiseSchedule,
    batchSize: number,
    readonly extraOutputs: readonly string[] = [],
  ) {
    this.session = session;
    const inputs = inputInfo(session);
    const outputs = outputInfo(session);
    refuseUnsupportedInputs(inputs, source);
    const matched = matchTensors(inputs, UNET_INPUTS, `${source} inputs`);
    if (matched.rest.length > 0) {
      throw new ModelLoadError(
        `${source}: has inputs ${matched.rest.map((t) => t.name).join(", ")} beside sample, ` +
          `timestep and encoder_hidden_states, and infodiff does not know what to feed them; ` +
          `found inputs ${describeTensors(inputs)}`,
      );
    }
    const sample = matched.found.get("sample")!;
    const timestep = matched.found.get("timestep")!;
    const hidden = matched.found.get("encoder_hidden_states")!;
    const missing = extraOutputs.filter((name) => !outputs.has(name));
    if (missing.length > 0) {
      throw new ModelLoadError(
        `${source}: has no output ${missing.join(", ")}; found outputs ${describeTensors(outputs)}`,
      );
    }
    const main = new Map([...outputs].filter(([name]) => !extraOutputs.includes(name)));
    const output = main.size === 1
      ? [...main.values()][0]
      : matchTensor(main, UNET_OUTPUT, `${source} outputs`);
    for (const info of [sample, hidden, output]) {
      if (!FLOAT_TYPES.includes(info.type)) {
        throw new ModelLoadError(
          `${source}: ${info.name} has type ${info.type}; expected float32 or float16`,
        );
      }
    }
    if (![...FLOAT_TYPES, "int64", "int32"].includes(timestep.type)) {
      throw new ModelLoadError(
        `${source}: timestep has type ${timestep.type}; expected int64, int32, float32 or float16`,
      );
    }
    this.sample = sample;
    this.timestep = timestep;
    this.inputNames = { sample: sample.name, timestep: timestep.name, hidden: hidden.name };
    this.hiddenInput = hidden;
    this.outputName = output.name;
    this.scalarTimestep = timestep.shape.length === 0 || timestep.shape[0] === 1;
    this.fixedBatch = typeof sample.shape[0] === "number" ? sample.shape[0] : undefined;
    this.batchSize = this.fixedBatch ?? batchSize;
  }

  /** (C, H, W) of `sample` when the export fixed them, else undefined (dynamic axes). */
  get metadataShape(): [number, number, number] | undefined {
    const [, c, h, w] = this.sample.shape;
    return typeof c === "number" && typeof h === "number" && typeof w === "number"
      ? [c, h, w]
      : undefined;
  }

  /**
   * The model output converted to noise predictions, one `C·H·W` block per item. Items are sent in
   * calls of at most `batchSize`; with a scalar timestep each call holds items of one timestep.
   */
  async predict(
    request: UnetRequest,
    itemShape: readonly [number, number, number],
  ): Promise<Float32Array> {
    return (await this.predictWithOutputs(request, itemShape)).noise;
  }

  /**
   * Like {@link OnnxUnet.predict}, and also returns each item's share of the extra outputs (their
   * first axis is batch-major: `[B·heads, …]` or `[B, …]`).
   */
  async predictWithOutputs(
    request: UnetRequest,
    itemShape: readonly [number, number, number],
  ): Promise<UnetPrediction> {
    const n = request.timesteps.length;
    const d = itemShape[0] * itemShape[1] * itemShape[2];
    if (request.noisy.length !== n * d || request.hiddenStates.length !== n) {
      throw new ModelRuntimeError(
        `${this.source}: batch has ${request.noisy.length} values and ${request.hiddenStates.length} ` +
          `conditions for ${n} items; expected ${n * d} values and ${n} conditions`,
      );
    }
    let result: Float32Array = new Float32Array(0);
    const extras: ReadonlyMap<string, ItemOutput>[] = new Array(n);
    const collect = (items: number[], output: Float32Array, outputs: Map<string, ItemOutput>[]) => {
      // one call with every item in order: its output is the result, without a copy
      if (items.length === n && consecutive(items)) result = output;
      else {
        if (result.length !== n * d) result = new Float32Array(n * d);
        items.forEach((item, k) => result.set(output.subarray(k * d, (k + 1) * d), item * d));
      }
      items.forEach((item, k) => extras[item] = outputs[k]);
    };
    for (const group of this.#groups(request.timesteps)) {
      for (let start = 0; start < group.length;) {
        const items = group.slice(start, start + Math.min(this.batchSize, this.largestCall));
        await this.#runFitting(items, request, itemShape, collect);
        start += items.length;
      }
    }
    return { noise: result, outputs: extras };
  }

  /**
   * The largest call that runs: the batch size, until a call exceeds WebGPU's per-shader storage
   * buffer limit (Dawn: "Too many storage buffers in shader"); then calls are halved until they run,
   * and the largest size that worked is kept for every later call.
   */
  largestCall: number = Number.POSITIVE_INFINITY;

  async #runFitting(
    items: number[],
    request: UnetRequest,
    itemShape: readonly [number, number, number],
    collect: (items: number[], output: Float32Array, outputs: Map<string, ItemOutput>[]) => void,
  ): Promise<void> {
    try {
      const { output, outputs } = await this.#run(items, request, itemShape);
      collect(items, output, outputs);
    } catch (error) {
      if (items.length === 1 || this.fixedBatch || !exceedsBufferLimit(error)) throw error;
      const half = Math.ceil(items.length / 2);
      if (half < this.largestCall) {
        warn(
          `infodiff: ${this.source}: a call of ${items.length} items exceeds the WebGPU shader's ` +
            `storage-buffer limit; calls are split to ${half} items from now on`,
        );
        this.largestCall = half;
      }
      await this.#runFitting(items.slice(0, half), request, itemShape, collect);
      await this.#runFitting(items.slice(half), request, itemShape, collect);
    }
  }

  /** Item indices grouped so each call is valid: all together, or by equal timestep. */
  #groups(timesteps: Int32Array): number[][] {
    const all = Array.from(timesteps.keys());
    if (!this.scalarTimestep) return [all];
    const byTimestep = new Map<number, number[]>();
    for (const i of all) {
      const group = byTimestep.get(timesteps[i]) ?? [];
      group.push(i);
      byTimestep.set(timesteps[i], group);
    }
    return [...byTimestep.values()];
  }

  async #run(
    items: number[],
    request: UnetRequest,
    itemShape: readonly [number, number, number],
  ): Promise<{ output: Float32Array; outputs: Map<string, ItemOutput>[] }> {
    const d = itemShape[0] * itemShape[1] * itemShape[2];
    // a fixed-batch export gets the last item repeated up to its batch; extra outputs are dropped
    const rows = this.fixedBatch ? padTo(items, this.fixedBatch) : items;
    const hiddenSize = request.hiddenStates[items[0]].length;
    const sample = consecutive(rows)
      ? request.noisy.subarray(rows[0] * d, (rows[0] + rows.length) * d) // no copy
      : gather(request.noisy, rows, d);
    const hidden = this.#hiddenBatch(rows.map((item) => request.hiddenStates[item]), hiddenSize);
    const positions = request.contextLength;
    if (!Number.isInteger(hiddenSize / positions)) {
      throw new ModelRuntimeError(
        `${this.source}: hidden states of ${hiddenSize} values do not split into ${positions} positions`,
      );
    }
    const hiddenDims = [rows.length, positions, hiddenSize / positions];
    const sampleTensor = this.#floatTensor(this.sample.type, sample, [rows.length, ...itemShape]);
    const hiddenTensor = hidden instanceof Uint16Array
      ? new Tensor("float16", hidden, hiddenDims)
      : new Tensor("float32", hidden, hiddenDims);
    const timestepTensor = this.#timestepTensor(rows.map((item) => request.timesteps[item]));
    const feeds = {
      [this.inputNames.sample]: sampleTensor,
      [this.inputNames.hidden]: hiddenTensor,
      [this.inputNames.timestep]: timestepTensor,
    };
    const start = performance.now();
    let results;
    try {
      results = await this.session.run(feeds, [this.outputName, ...this.extraOutputs]);
    } catch (error) {
      throw new ModelRuntimeError(
        `${this.source}: session.run failed; fed sample [${sampleTensor.dims}], timestep ` +
          `[${timestepTensor.dims}], encoder_hidden_states [${hiddenTensor.dims}]`,
        { cause: error },
      );
    }
    this.runMs += performance.now() - start;
    this.runs++;
    const tensor = results[this.outputName];
    // the tensor's JS array stays valid after dispose(): read in place, not copied
    const raw = tensor.type === "float16"
      ? fromFloat16Bits(tensor.data as Uint16Array)
      : tensor.data as Float32Array;
    tensor.dispose();
    const output = raw.subarray(0, items.length * d);
    if (!request.finiteChecked) this.#checkFinite(output, items, request.timesteps, d);
    if (this.schedule.predictionType === "v_prediction") {
      const abar = items.map((item) => this.schedule.alphasCumprod[request.timesteps[item]]);
      vToEpsilon(output, sample, abar, d);
    }
    const outputs = items.map(() => new Map<string, ItemOutput>());
    for (const name of this.extraOutputs) {
      const extra = results[name];
      // the tensor's JS array stays valid after dispose(); item shares are views into it
      const values = extra.type === "float16"
        ? fromFloat16Bits(extra.data as Uint16Array)
        : extra.data as Float32Array;
      const dims = [...extra.dims];
      extra.dispose();
      if (dims.length === 0 || dims[0] % rows.length !== 0) {
        throw new ModelRuntimeError(
          `${this.source}: output ${name} has dims [${dims}]; expected a first axis that is a ` +
            `multiple of the batch ${rows.length} (batch-major, e.g. [B·heads, HW, tokens])`,
        );
      }
      const itemDims = [dims[0] / rows.length, ...dims.slice(1)];
      const size = values.length / rows.length;
      items.forEach((_, k) => {
        outputs[k].set(name, { data: values.subarray(k * size, (k + 1) * size), dims: itemDims });
      });
    }
    return { output, outputs };
  }

  /**
   * The batch's hidden states, batch-major. Built once per distinct sequence of conditions and
   * kept (up to {@link HIDDEN_CACHE_BYTES}, least recently used dropped first): a plan's calls
   * cycle through the same few sequences of its K conditions, and building 77×1024 values per
   * item for every call was a quarter of the work around session.run.
   */
  #hiddenBatch(states: readonly Float32Array[], hiddenSize: number): Float32Array | Uint16Array {
    const key = states.map((h) => this.#stateId(h)).join(",");
    const cached = this.#hiddenCache.get(key);
    if (cached) {
      this.#hiddenCache.delete(key); // most recently used last
      this.#hiddenCache.set(key, cached);
      return cached;
    }
    const fp16 = this.hiddenInput.type === "float16";
    const buffer = fp16
      ? new Uint16Array(states.length * hiddenSize)
      : new Float32Array(states.length * hiddenSize);
    states.forEach((h, k) => {
      if (h.length !== hiddenSize) {
        throw new ModelRuntimeError(
          `${this.source}: conditions of one batch have different hidden sizes`,
        );
      }
      if (fp16) (buffer as Uint16Array).set(this.#float16Of(h), k * hiddenSize);
      else (buffer as Float32Array).set(h, k * hiddenSize);
    });
    this.#hiddenCache.set(key, buffer);
    this.#hiddenBytes += buffer.byteLength;
    for (const [old, value] of this.#hiddenCache) {
      if (this.#hiddenBytes <= HIDDEN_CACHE_BYTES || old === key) break;
      this.#hiddenCache.delete(old);
      this.#hiddenBytes -= value.byteLength;
    }
    return buffer;
  }

  #stateId(state: Float32Array): number {
    let id = this.#stateIds.get(state);
    if (id === undefined) this.#stateIds.set(state, id = this.#nextStateId++);
    return id;
  }

  readonly #hiddenCache = new Map<string, Float32Array | Uint16Array>();
  #hiddenBytes = 0;
  readonly #stateIds = new WeakMap<Float32Array, number>();
  #nextStateId = 0;

  #checkFinite(output: Float32Array, items: number[], timesteps: Int32Array, d: number) {
    for (let j = 0; j < output.length; j++) {
      if (!Number.isFinite(output[j])) {
        const t = timesteps[items[Math.floor(j / d)]];
        throw new ModelRuntimeError(
          `${this.source}: UNet output contains ${output[j]} (item ${items[Math.floor(j / d)]}, ` +
            `timestep ${t}, value ${j % d}); expected finite noise predictions`,
        );
      }
    }
  }

  /** fp16 bits of a condition's hidden states, converted once per condition (they are reused). */
  #float16Of(hidden: Float32Array): Uint16Array {
    let bits = this.#float16Cache.get(hidden);
    if (!bits) {
      bits = toFloat16Bits(hidden);
      this.#float16Cache.set(hidden, bits);
    }
    return bits;
  }

  #floatTensor(type: string, values: Float32Array, dims: number[]): Tensor {
    return type === "float16"
      ? new Tensor("float16", toFloat16Bits(values), dims)
      : new Tensor("float32", values, dims);
  }

  #timestepTensor(timesteps: number[]): Tensor {
    const values = this.scalarTimestep ? [timesteps[0]] : timesteps;
    const dims = this.timestep.shape.length === 0 ? [] : [values.length];
    switch (this.timestep.type) {
      case "int64":
        return new Tensor("int64", BigInt64Array.from(values, (t) => BigInt(t)), dims);
      case "int32":
        return new Tensor("int32", Int32Array.from(values), dims);
      case "float16":
        return new Tensor("float16", toFloat16Bits(values), dims);
      default:
        return new Tensor("float32", Float32Array.from(values), dims);
    }
  }
}

/** Dawn's error for a shader that needs more storage buffers than the device allows. */
function exceedsBufferLimit(error: unknown): boolean {
  for (let e = error; e instanceof Error; e = e.cause) {
    if (/Too many storage buffers/i.test(e.message)) return true;
  }
  return false;
}

function padTo(items: number[], size: number): number[] {
  if (items.length > size) {
    throw new InvalidArgumentError(
      `batch of ${items.length} items exceeds the export's fixed batch of ${size}; expected at most ${size}`,
    );
  }
  return [...items, ...Array(size - items.length).fill(items[items.length - 1])];
}

/** The most bytes of batched hidden states an {@link OnnxUnet} keeps for reuse. */
export const HIDDEN_CACHE_BYTES = 64 * 2 ** 20;

/** True when the indices are k, k+1, …: their rows are one contiguous span. */
function consecutive(rows: readonly number[]): boolean {
  return rows.every((item, k) => item === rows[0] + k);
}

/** The rows `rows` of d values each, copied into one buffer in that order. */
function gather(values: Float32Array, rows: readonly number[], d: number): Float32Array {
  const out = new Float32Array(rows.length * d);
  rows.forEach((item, k) => out.set(values.subarray(item * d, (item + 1) * d), k * d));
  return out;
}
