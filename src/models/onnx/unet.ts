/**
 * The denoising network of a diffusers ONNX export: an SD UNet's `sample` [B,C,H,W], `timestep`
 * (int64 [B], float [B], float scalar [] or float16), `encoder_hidden_states` [B,77,hidden] →
 * `out_sample` (REFERENCE §5), and with a {@link NetworkSpec} the other families' networks: SDXL's
 * UNet (plus `text_embeds`, `time_ids`), SD 3's and FLUX.1's transformers (`hidden_states`,
 * `pooled_projections`, FLUX's packed tokens, `img_ids`, `txt_ids`, `guidance`). Every dtype and
 * shape comes from the session metadata.
 *
 * @module
 */
import { type InferenceSession, Tensor } from "npm:onnxruntime-node@1.30.0";
import { InvalidArgumentError, ModelLoadError, ModelRuntimeError } from "../../errors.ts";
import { fromFloat16Bits, toFloat16Bits } from "./float16.ts";
import { type NoiseSchedule, vToEpsilon } from "../sd/schedule.ts";
import { describeTensors, inputInfo, outputInfo, type TensorInfo } from "./session.ts";
import {
  matchTensor,
  matchTensors,
  type TensorRole,
  UNET_INPUTS,
  UNET_OUTPUT,
} from "./tensor-roles.ts";
import { warn } from "../../warnings.ts";

/** UNet inputs of other model families, refused with what they are. */
const UNSUPPORTED_INPUTS: readonly (readonly [string, string])[] = [
  [
    "timestep_cond",
    "an LCM (latent consistency) UNet: timestep_cond is its distilled guidance-scale embedding, " +
    "so its noise predictions are guided ones, not the conditional ε̂(x, α | prompt) the " +
    "estimators need; use the base model's export",
  ],
  [
    "text_embeds",
    "an SDXL UNet (pooled text embeddings text_embeds) in a folder laid out for one text encoder: " +
    "SDXL's pipeline needs text_encoder_2/ and tokenizer_2/ beside it (export the whole pipeline " +
    'with optimum-cli, see docs/models.md, "Getting a model")',
  ],
  [
    "time_ids",
    "an SDXL UNet (micro-conditioning time_ids) in a folder laid out for one text encoder: " +
    "SDXL's pipeline needs text_encoder_2/ and tokenizer_2/ beside it",
  ],
];

function refuseUnsupportedInputs(
  inputs: ReadonlyMap<string, TensorInfo>,
  source: string,
  fed: ReadonlySet<string>,
): void {
  for (const [name, what] of UNSUPPORTED_INPUTS) {
    if (inputs.has(name) && !fed.has(name)) {
      throw new ModelLoadError(
        `${source}: has the input ${name}, i.e. ${what} (infodiff supports Stable Diffusion ` +
          `1.x/2.x UNets: sample, timestep, encoder_hidden_states)`,
      );
    }
  }
}

/** One UNet request: items share nothing but the model; each has its own timestep and text. */
export interface UnetRequest {
  /** noisy samples, item-major, `n · C·H·W` values (FLUX.1: packed tokens, `n · L·64`) */
  readonly noisy: Float32Array;
  /**
   * each item's timestep as the network takes it (length n): the trained timestep index of an SD
   * UNet, 1000·t of SD 3's transformer, t of FLUX.1's
   */
  readonly timesteps: ArrayLike<number>;
  /** encoder_hidden_states of each item's prompt, `contextLength · hiddenSize` values each */
  readonly hiddenStates: readonly Float32Array[];
  /** token positions per hidden state (77 for CLIP; SD 3: 77 + T5's; FLUX.1: T5's) */
  readonly contextLength: number;
  /** each "condition" input's values per item (SDXL's text_embeds, pooled_projections) */
  readonly conditionInputs?: ReadonlyMap<string, readonly Float32Array[]>;
  /** the caller checks the output's finiteness where it reads it: skip the pass here */
  readonly finiteChecked?: boolean;
  /**
   * the values of the `fromRequest` inputs for this request (without the batch axis of an "item"
   * input), e.g. concept attention's concept words
   */
  readonly callInputs?: ReadonlyMap<string, CallInput>;
}

/** The values of one input given with a request (see {@link NetworkInput.fromRequest}). */
export interface CallInput {
  /** the values, row-major */
  readonly values: Float32Array;
  /** their dims (without the batch axis of an "item" input) */
  readonly dims: readonly number[];
}

/**
 * A network input besides sample, timestep and encoder_hidden_states, and how it is fed:
 * `"condition"` one vector per item from its prompt (SDXL's `text_embeds`, `pooled_projections`),
 * given in each request; `"item"` the same values for every item, one copy per batch row (SDXL's
 * `time_ids`, FLUX.1-dev's `guidance`); `"shared"` one tensor for the whole call without a batch
 * axis (FLUX.1's `img_ids` and `txt_ids` since diffusers 0.31).
 */
export interface NetworkInput {
  /** the graph input's name */
  readonly name: string;
  /** how it is fed */
  readonly kind: "condition" | "item" | "shared";
  /** item/shared: the values (per row for "item", the whole tensor for "shared") */
  readonly values?: Float32Array;
  /**
   * item/shared: true when the values come with each request (`UnetRequest.callInputs`) instead
   * of `values` (an edited graph's own inputs, e.g. concept attention's concept words)
   */
  readonly fromRequest?: boolean;
  /**
   * item/shared: their dims (without the batch axis for "item"); a "condition" input is one
   * vector per item, fed as [B, its length]
   */
  readonly dims?: readonly number[];
}

/** How a family's network differs from an SD UNet (see {@link OnnxUnet}). */
export interface NetworkSpec {
  /** roles of sample, timestep and encoder_hidden_states (default the UNet's) */
  readonly inputs?: readonly TensorRole[];
  /** role of the prediction output (default the UNet's `out_sample`) */
  readonly output?: TensorRole;
  /** the further inputs and how each is fed */
  readonly extraInputs?: readonly NetworkInput[];
  /**
   * turns the raw prediction of `timesteps.length` items into ε̂ in place, given the samples they
   * were fed (default: the schedule's v → ε for a v-prediction UNet, nothing for ε)
   */
  readonly toNoise?: (
    output: Float32Array,
    sample: Float32Array,
    timesteps: readonly number[],
    itemSize: number,
  ) => void;
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
  /** the further inputs this network is fed (SDXL, SD 3, FLUX.1), by name */
  readonly extraInputs: ReadonlyMap<string, NetworkInput & { readonly info: TensorInfo }>;
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
  /**
   * rows of batched per-condition inputs (hidden states, pooled vectors) written so far: a row
   * already in place in a cached or reused batch is not written again
   */
  conditionRowsWritten = 0;
  /**
   * the most bytes of batched per-condition inputs kept for reuse (default
   * {@link HIDDEN_CACHE_BYTES}); at least one batch is kept, however large
   */
  hiddenCacheBytes: number = HIDDEN_CACHE_BYTES;
  readonly #float16Cache = new WeakMap<Float32Array, Uint16Array>();

  /**
   * @param session a UNet session
   * @param source its path, for messages
   * @param schedule the training schedule (for ᾱ_t in the v → ε conversion); none for a flow model
   * @param batchSize preferred items per call
   * @param extraOutputs further outputs to return per item (an edited graph's, see predictWithOutputs)
   * @param spec how a family's network differs from an SD UNet (inputs, output, conversion)
   */
  constructor(
    session: InferenceSession,
    readonly source: string,
    readonly schedule: NoiseSchedule | undefined,
    batchSize: number,
    readonly extraOutputs: readonly string[] = [],
    readonly spec: NetworkSpec = {},
  ) {
    this.session = session;
    const inputs = inputInfo(session);
    const outputs = outputInfo(session);
    const fed = new Set((spec.extraInputs ?? []).map((input) => input.name));
    refuseUnsupportedInputs(inputs, source, fed);
    const matched = matchTensors(
      new Map([...inputs].filter(([name]) => !fed.has(name))),
      spec.inputs ?? UNET_INPUTS,
      `${source} inputs`,
    );
    if (matched.rest.length > 0) {
      throw new ModelLoadError(
        `${source}: has inputs ${matched.rest.map((t) => t.name).join(", ")} beside sample, ` +
          `timestep and encoder_hidden_states${fed.size ? ` and ${[...fed].join(", ")}` : ""}, ` +
          `and infodiff does not know what to feed them; found inputs ${describeTensors(inputs)}`,
      );
    }
    this.extraInputs = new Map((spec.extraInputs ?? []).map((input) => {
      const info = inputs.get(input.name);
      if (!info) {
        throw new ModelLoadError(
          `${source}: has no input ${input.name}; found inputs ${describeTensors(inputs)}`,
        );
      }
      // ids (FLUX.1's img_ids, txt_ids) may be integers: optimum exports them as int64
      const types = input.kind === "condition" ? FLOAT_TYPES : [...FLOAT_TYPES, "int64", "int32"];
      if (!types.includes(info.type)) {
        throw new ModelLoadError(
          `${source}: ${input.name} has type ${info.type}; expected ${types.join(", ")}`,
        );
      }
      return [input.name, { ...input, info }];
    }));
    if (!schedule && !spec.toNoise) {
      throw new ModelLoadError(`${source}: a network needs a schedule or a conversion to ε̂`);
    }
    // the roles in order: the sample, the timestep, the encoder's hidden states
    const [sample, timestep, hidden] = (spec.inputs ?? UNET_INPUTS).map((role) =>
      matched.found.get(role.role)!
    );
    const missing = extraOutputs.filter((name) => !outputs.has(name));
    if (missing.length > 0) {
      throw new ModelLoadError(
        `${source}: has no output ${missing.join(", ")}; found outputs ${describeTensors(outputs)}`,
      );
    }
    const main = new Map([...outputs].filter(([name]) => !extraOutputs.includes(name)));
    const output = main.size === 1
      ? [...main.values()][0]
      : matchTensor(main, spec.output ?? UNET_OUTPUT, `${source} outputs`);
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
  async predict(request: UnetRequest, itemShape: readonly number[]): Promise<Float32Array> {
    return (await this.predictWithOutputs(request, itemShape)).noise;
  }

  /**
   * Like {@link OnnxUnet.predict}, and also returns each item's share of the extra outputs (their
   * first axis is batch-major: `[B·heads, …]` or `[B, …]`).
   */
  async predictWithOutputs(
    request: UnetRequest,
    itemShape: readonly number[],
  ): Promise<UnetPrediction> {
    const n = request.timesteps.length;
    const d = itemShape.reduce((a, b) => a * b, 1);
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
    itemShape: readonly number[],
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
  #groups(timesteps: ArrayLike<number>): number[][] {
    const all = Array.from({ length: timesteps.length }, (_, i) => i);
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
    itemShape: readonly number[],
  ): Promise<{ output: Float32Array; outputs: Map<string, ItemOutput>[] }> {
    const d = itemShape.reduce((a, b) => a * b, 1);
    // a fixed-batch export gets the last item repeated up to its batch; extra outputs are dropped
    const rows = this.fixedBatch ? padTo(items, this.fixedBatch) : items;
    const hiddenSize = request.hiddenStates[items[0]].length;
    // the feeds are built without awaiting anything, so no other call's batches are among these
    this.#feeding.clear();
    const sample = consecutive(rows)
      ? request.noisy.subarray(rows[0] * d, (rows[0] + rows.length) * d) // no copy
      : gather(request.noisy, rows, d);
    const hidden = this.#conditionBatch(
      this.inputNames.hidden,
      this.hiddenInput.type,
      rows.map((item) => request.hiddenStates[item]),
      hiddenSize,
    );
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
    const feeds: Record<string, Tensor> = {
      [this.inputNames.sample]: sampleTensor,
      [this.inputNames.hidden]: hiddenTensor,
      [this.inputNames.timestep]: timestepTensor,
      ...this.#extraFeeds(rows, request),
    };
    const start = performance.now();
    const held = Object.values(feeds).flatMap((t) =>
      t.data instanceof Float32Array || t.data instanceof Uint16Array ? [t.data] : []
    );
    let results;
    this.#holding(held, 1);
    try {
      results = await this.session.run(feeds, [this.outputName, ...this.extraOutputs]);
    } catch (error) {
      throw new ModelRuntimeError(
        `${this.source}: session.run failed; fed ${
          Object.entries(feeds).map(([name, t]) => `${name} [${t.dims}]`).join(", ")
        }`,
        { cause: error },
      );
    } finally {
      this.#holding(held, -1);
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
    const itemTimesteps = items.map((item) => request.timesteps[item]);
    if (this.spec.toNoise) this.spec.toNoise(output, sample, itemTimesteps, d);
    else if (this.schedule!.predictionType === "v_prediction") {
      const abar = itemTimesteps.map((t) => this.schedule!.alphasCumprod[t]);
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
   * Feeds of the further inputs for these rows: "condition" ones batched per sequence of
   * conditions (cached as the hidden states are), "item" ones repeated per row, "shared" ones once.
   */
  #extraFeeds(rows: readonly number[], request: UnetRequest): Record<string, Tensor> {
    const feeds: Record<string, Tensor> = {};
    for (const [name, input] of this.extraInputs) {
      if (input.kind === "condition") {
        const values = request.conditionInputs?.get(name);
        if (!values || values.length !== request.hiddenStates.length) {
          throw new ModelRuntimeError(
            `${this.source}: the request has no ${name} for each item; expected one vector per item`,
          );
        }
        // one vector per item (a pooled text embedding): its length is the input's width
        const size = values[rows[0]].length;
        const batch = this.#conditionBatch(name, input.info.type, rows.map((i) => values[i]), size);
        feeds[name] = batch instanceof Uint16Array
          ? new Tensor("float16", batch, [rows.length, size])
          : new Tensor("float32", batch, [rows.length, size]);
      } else if (input.fromRequest) {
        const given = request.callInputs?.get(name);
        if (!given) {
          throw new ModelRuntimeError(`${this.source}: the request has no values for ${name}`);
        }
        const values = input.kind === "item" ? repeatRows(given.values, rows.length) : given.values;
        const dims = input.kind === "item" ? [rows.length, ...given.dims] : [...given.dims];
        feeds[name] = valuesTensor(input.info.type, values, dims);
      } else {
        // the same for every call of this many rows: built once (int64 ids cost a BigInt each)
        const key = `${name}:${input.kind === "item" ? rows.length : "shared"}`;
        let data = this.#constantFeeds.get(key);
        if (!data) {
          const values = input.kind === "item"
            ? repeatRows(input.values!, rows.length)
            : input.values!;
          const dims = input.kind === "item" ? [rows.length, ...input.dims!] : [...input.dims!];
          data = valuesTensor(input.info.type, values, dims);
          this.#constantFeeds.set(key, data);
        }
        feeds[name] = new Tensor(data.type, data.data, data.dims);
      }
    }
    return feeds;
  }

  /**
   * The batch's values of one per-condition input (the hidden states, or a pooled vector),
   * batch-major. Built once per distinct sequence of conditions and kept (up to
   * `hiddenCacheBytes`, least recently used dropped first): a plan's calls cycle through
   * the same few sequences of its K conditions, and building 77×1024 values per item for every
   * call was a quarter of the work around session.run.
   */
  #conditionBatch(
    name: string,
    type: string,
    states: readonly Float32Array[],
    hiddenSize: number,
  ): Float32Array | Uint16Array {
    // one row of float32: the condition's own values are the batch, no copy (SD 3's and FLUX.1's
    // states are megabytes)
    if (states.length === 1 && type === "float32" && states[0].length === hiddenSize) {
      return states[0];
    }
    const ids = states.map((h) => this.#stateId(h));
    const key = `${name}:${ids.join(",")}`;
    this.#feeding.add(key);
    const cached = this.#hiddenCache.get(key);
    if (cached) {
      this.#hiddenCache.delete(key); // most recently used last
      this.#hiddenCache.set(key, cached);
      return cached.buffer;
    }
    const fp16 = type === "float16";
    const length = states.length * hiddenSize;
    this.#makeRoom(length * (fp16 ? 2 : 4));
    // a spare batch of the same size (evicted, no call reading it) is refilled where its rows
    // differ: SD 3's and FLUX's states are megabytes per prompt, and a fresh allocation of them
    // (zeroed, page by page) cost five times the copy
    const spare = this.#takeSpare(`${type}:${length}`);
    const buffer = spare?.buffer ?? (fp16 ? new Uint16Array(length) : new Float32Array(length));
    states.forEach((h, k) => {
      if (h.length !== hiddenSize) {
        throw new ModelRuntimeError(
          `${this.source}: ${name} of one batch has ${h.length} values for one item; expected ` +
            `${hiddenSize} for every item`,
        );
      }
      if (spare?.ids[k] === ids[k]) return; // already there
      if (fp16) (buffer as Uint16Array).set(this.#float16Of(h), k * hiddenSize);
      else (buffer as Float32Array).set(h, k * hiddenSize);
      this.conditionRowsWritten++;
    });
    this.#hiddenCache.set(key, { buffer, ids, spareKey: `${type}:${length}` });
    this.#hiddenBytes += buffer.byteLength;
    return buffer;
  }

  /**
   * Drops the least recently used batches until `bytes` more fit in `hiddenCacheBytes`, except
   * those of the call being fed (its other inputs). Room is made before the new
   * batch is built, so where the cache holds one batch (SD 3's and FLUX.1's are tens of megabytes)
   * the spare refilled is the previous call's, whose rows mostly match (the estimators keep each
   * row's condition from call to call), not the one before it.
   */
  #makeRoom(bytes: number): void {
    for (const [key, value] of this.#hiddenCache) {
      if (this.#hiddenBytes + bytes <= this.hiddenCacheBytes) break;
      if (this.#feeding.has(key)) continue;
      this.#hiddenCache.delete(key);
      this.#hiddenBytes -= value.buffer.byteLength;
      this.#retire(value);
    }
  }

  /** A spare batch buffer of this type and length, if one is free. */
  #takeSpare(spareKey: string): CachedBatch | undefined {
    const index = this.#spares.findIndex((s) => s.spareKey === spareKey);
    return index < 0 ? undefined : this.#spares.splice(index, 1)[0];
  }

  /** An evicted batch becomes a spare once no call in flight reads it. */
  #retire(batch: CachedBatch): void {
    if ((this.#inUse.get(batch.buffer) ?? 0) > 0) this.#retired.add(batch);
    else this.#spares.push(batch);
    if (this.#spares.length > MAX_SPARES) this.#spares.shift();
  }

  /** Marks the call's batch buffers read (`+1`) or done (`−1`); freed retired ones become spares. */
  #holding(buffers: readonly (Float32Array | Uint16Array)[], change: 1 | -1): void {
    for (const buffer of buffers) {
      const count = (this.#inUse.get(buffer) ?? 0) + change;
      if (count > 0) this.#inUse.set(buffer, count);
      else this.#inUse.delete(buffer);
    }
    if (change > 0) return;
    for (const batch of this.#retired) {
      if (this.#inUse.has(batch.buffer)) continue;
      this.#retired.delete(batch);
      this.#retire(batch);
    }
  }

  #stateId(state: Float32Array): number {
    let id = this.#stateIds.get(state);
    if (id === undefined) this.#stateIds.set(state, id = this.#nextStateId++);
    return id;
  }

  readonly #constantFeeds = new Map<string, Tensor>();
  readonly #hiddenCache = new Map<string, CachedBatch>();
  /** the cache keys of the call whose feeds are being built */
  readonly #feeding = new Set<string>();
  #hiddenBytes = 0;
  readonly #spares: CachedBatch[] = [];
  readonly #retired = new Set<CachedBatch>();
  readonly #inUse = new Map<Float32Array | Uint16Array, number>();
  readonly #stateIds = new WeakMap<Float32Array, number>();
  #nextStateId = 0;

  #checkFinite(output: Float32Array, items: number[], timesteps: ArrayLike<number>, d: number) {
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

/** A tensor of the input's type holding `values` (integers for an int64/int32 input). */
function valuesTensor(type: string, values: Float32Array, dims: number[]): Tensor {
  switch (type) {
    case "int64":
      return new Tensor("int64", BigInt64Array.from(values, (v) => BigInt(v)), dims);
    case "int32":
      return new Tensor("int32", Int32Array.from(values), dims);
    case "float16":
      return new Tensor("float16", toFloat16Bits(values), dims);
    default:
      return new Tensor("float32", values, dims);
  }
}

/** `count` copies of `values`, one after another (an input fed the same for every batch row). */
function repeatRows(values: Float32Array, count: number): Float32Array {
  const out = new Float32Array(values.length * count);
  for (let k = 0; k < count; k++) out.set(values, k * values.length);
  return out;
}

function padTo(items: number[], size: number): number[] {
  if (items.length > size) {
    throw new InvalidArgumentError(
      `batch of ${items.length} items exceeds the export's fixed batch of ${size}; expected at most ${size}`,
    );
  }
  return [...items, ...Array(size - items.length).fill(items[items.length - 1])];
}

/** A batch of per-condition values the network was fed, with the condition of each row. */
interface CachedBatch {
  readonly buffer: Float32Array | Uint16Array;
  /** each row's condition (its state's id) */
  readonly ids: readonly number[];
  /** type and length: which later batches may reuse the buffer */
  readonly spareKey: string;
}

/** Evicted batch buffers kept for refilling (bounded: each can be tens of megabytes). */
const MAX_SPARES = 2;

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
