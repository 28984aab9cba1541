/**
 * Cross-attention probabilities of an ONNX UNet: which models have them
 * ({@link supportsAttention}), and one UNet pass that returns them next to ε̂
 * ({@link predictWithAttention}), per item and layer as [heads, h·w, tokens].
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError, ModelRuntimeError } from "../../errors.ts";
import type { Model, NoiseBatch } from "../denoiser.ts";
import type { EditedUnet } from "./onnx-denoiser.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";
import type { UnetPrediction } from "./unet.ts";
import {
  addGraphOutputs,
  type AttentionGraph,
  crossAttentionLayers,
  readAttentionGraph,
} from "./attention-graph.ts";

/** What a model needs for attention maps (an `OnnxModel` from `loadModel` has it). */
export interface AttentionModel extends Model {
  /** the UNet's .onnx file */
  readonly unetPath: string;
  /** the prompt tokenizer (context length, word token positions) */
  readonly tokenizer: Pick<ClipTokenizer, "contextLength" | "wordPositions">;
  /** ε̂ plus per-item extra outputs of an edited UNet graph */
  predictNoiseWithOutputs(batch: NoiseBatch, graph: EditedUnet): Promise<UnetPrediction>;
}

/** One layer's cross-attention probabilities for one item. */
export interface AttentionLayerMap {
  /** the Softmax node */
  readonly node: string;
  /** number of heads */
  readonly heads: number;
  /** rows of the layer's spatial grid */
  readonly height: number;
  /** columns of the layer's spatial grid */
  readonly width: number;
  /** tokens attended to (the context length) */
  readonly tokens: number;
  /** probabilities [heads, height·width, tokens], row-major */
  readonly probs: Float32Array;
}

/** ε̂ and, per item, every cross-attention layer's probabilities. */
export interface AttentionPrediction {
  /** noise predictions, item-major */
  readonly noise: Float32Array;
  /** per item, per layer (graph order) */
  readonly layers: readonly (readonly AttentionLayerMap[])[];
}

const graphs = new WeakMap<object, AttentionGraph>();
/** An edited UNet whose bytes are dropped once its session exists (a UNet can be gigabytes). */
interface HeldUnet {
  bytes: Uint8Array;
  readonly outputs: readonly string[];
}

const editedUnets = new WeakMap<object, Promise<HeldUnet>>();

/**
 * True when attention maps can be read from the model: an ONNX model (from `loadModel`) whose
 * UNet has cross-attention Softmax nodes (`.../attn2/...`). False for the oracles, fused-attention
 * exports and UNets without cross-attention. Reads the UNet graph once per model.
 *
 * @example
 * ```ts
 * import { supportsAttention } from "./cross-attention.ts";
 * import { exampleOracle } from "../example.ts";
 * import { loadModel } from "./load-model.ts";
 * console.assert(!supportsAttention(exampleOracle()));
 * const model = await loadModel("fixtures/models/attention-tiny", { device: "cpu" });
 * console.assert(supportsAttention(model));
 * await model.dispose();
 * ```
 */
export function supportsAttention(model: Model): boolean {
  if (!isAttentionModel(model)) return false;
  return graphOf(model).layers.length > 0;
}

/**
 * Predicts ε̂ for a batch (as `model.predictNoise`) and returns each item's cross-attention
 * probabilities per layer. The edited UNet session is made on first use and kept with the model.
 *
 * @throws {InvalidArgumentError} for a model without an ONNX UNet (e.g. an oracle)
 * @throws {ModelLoadError} for a fused-attention export or a UNet without cross-attention
 * @throws {ModelRuntimeError} when an attention output does not have the expected layout
 *
 * @example
 * ```ts
 * import { predictWithAttention } from "./cross-attention.ts";
 * import { loadModel } from "./load-model.ts";
 * const model = await loadModel("fixtures/models/attention-tiny", { device: "cpu" });
 * const condition = await model.encode("a red circle");
 * const { layers } = await predictWithAttention(model, {
 *   noisy: new Float32Array(3 * 8 * 8), logSnr: new Float64Array([0]), conditions: [condition],
 * });
 * console.assert(layers[0].length === 2 && layers[0][0].width === 8 && layers[0][1].width === 4);
 * await model.dispose();
 * ```
 */
export async function predictWithAttention(
  model: Model,
  batch: NoiseBatch,
): Promise<AttentionPrediction> {
  const attentionModel = requireAttentionModel(model);
  const edited = await editedUnetOf(attentionModel);
  const graph = graphOf(attentionModel);
  const prediction = await attentionModel.predictNoiseWithOutputs(batch, edited);
  // the model keeps the session made from the bytes (keyed by this object): they are not needed again
  edited.bytes = new Uint8Array(0);
  const layers = prediction.outputs.map((outputs) =>
    graph.layers.map((layer) => {
      const output = outputs.get(layer.output);
      if (!output) {
        throw new ModelRuntimeError(`${graph.source}: the edited UNet returned no ${layer.output}`);
      }
      return layerMap(attentionModel, layer.node, output.data, output.dims);
    })
  );
  return { noise: prediction.noise, layers };
}

/**
 * Narrows a model to one that has an ONNX UNet, or says why attention cannot be read.
 *
 * @throws {InvalidArgumentError} for a model without an ONNX UNet (e.g. an oracle)
 *
 * @example
 * ```ts
 * import { requireAttentionModel } from "./cross-attention.ts";
 * import { exampleOracle } from "../example.ts";
 * let refused = false;
 * try { requireAttentionModel(exampleOracle()); } catch { refused = true; }
 * console.assert(refused);
 * ```
 */
export function requireAttentionModel(model: Model): AttentionModel {
  if (!isAttentionModel(model)) {
    throw new InvalidArgumentError(
      `${model.name} has no ONNX UNet whose cross-attention could be read; expected a model ` +
        `from loadModel() (the oracles have no attention: check supportsAttention(model) first)`,
    );
  }
  return model;
}

function isAttentionModel(model: Model): model is AttentionModel {
  const candidate = model as Partial<AttentionModel>;
  return typeof candidate.unetPath === "string" &&
    typeof candidate.predictNoiseWithOutputs === "function" &&
    typeof candidate.tokenizer?.contextLength === "number" &&
    typeof candidate.tokenizer?.wordPositions === "function";
}

function graphOf(model: AttentionModel): AttentionGraph {
  let graph = graphs.get(model);
  if (!graph) {
    graph = readAttentionGraph(readFileSync(model.unetPath), model.unetPath);
    graphs.set(model, graph);
  }
  return graph;
}

function editedUnetOf(model: AttentionModel): Promise<HeldUnet> {
  let edited = editedUnets.get(model);
  if (!edited) {
    edited = (async () => {
      const layers = crossAttentionLayers(graphOf(model));
      const bytes = await Deno.readFile(model.unetPath);
      const outputs = layers.map((layer) => layer.output);
      return { bytes: addGraphOutputs(bytes, outputs), outputs };
    })();
    edited.catch(() => editedUnets.delete(model));
    editedUnets.set(model, edited);
  }
  return edited;
}

/**
 * One item's probabilities as a layer map: dims [heads, HW, tokens] (from [B·heads, HW, tokens])
 * or [1, heads, HW, tokens] (from [B, heads, HW, tokens]); the grid keeps the data's aspect ratio.
 */
function layerMap(
  model: AttentionModel,
  node: string,
  probs: Float32Array,
  dims: readonly number[],
): AttentionLayerMap {
  const tokens = model.tokenizer.contextLength;
  const shape = dims.length === 4 && dims[0] === 1 ? dims.slice(1) : dims;
  const [heads, cells, last] = shape;
  const [, dataHeight, dataWidth] = model.shape;
  // a layer downsamples both axes by the same factor f: cells = (H/f)·(W/f)
  const factor = Math.sqrt((dataHeight * dataWidth) / cells);
  const height = Math.round(dataHeight / factor), width = Math.round(dataWidth / factor);
  if (shape.length !== 3 || last !== tokens || height * width !== cells) {
    throw new ModelRuntimeError(
      `${model.unetPath}: cross-attention output of ${node} has per-item dims [${dims}]; expected ` +
        `[heads, h·w, ${tokens}] with h×w a downsampling of the ${dataHeight}×${dataWidth} data`,
    );
  }
  return { node, heads, height, width, tokens, probs };
}
