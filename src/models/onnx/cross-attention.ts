/**
 * The ONNX backend's {@link CrossAttention} capability: reads which UNet Softmax nodes are
 * cross-attention (`.../attn2/...`), exposes them as extra outputs of an edited copy of the graph,
 * and returns them next to ε̂, per item and layer as [heads, h·w, tokens].
 *
 * On a diffusion transformer (SD 3, FLUX.1) there is no cross-attention: text and image tokens
 * attend jointly. There the capability reads each block's joint-attention Softmax and returns the
 * block of image queries × text keys (what wooyeolbaek/attention-map-diffusers slices), sliced
 * inside the graph, per item and layer as [heads, h·w, text tokens] on the transformer's patch grid.
 * The block's rows are not renormalised: an image row gives the text the share of its attention
 * that does not go to image keys.
 *
 * @module
 */
import { readFileSync } from "node:fs";
import { InvalidArgumentError, ModelLoadError, ModelRuntimeError } from "../../errors.ts";
import { conceptWords } from "../../text/prompt.ts";
import type {
  AttentionLayerMap,
  AttentionPrediction,
  CrossAttention,
  NoiseBatch,
  Shape,
  WordTokens,
} from "../denoiser.ts";
import type { EditedUnet } from "./onnx-model.ts";
import type { ClipTokenizer } from "../sd/tokenizer.ts";
import type { CallInput, UnetPrediction, UnetRequest } from "./unet.ts";
import {
  addConceptStream,
  addGraphOutputs,
  addJointAttentionBlocks,
  addOutputSpaceMaps,
  type AttentionGraph,
  type ConceptStreamInput,
  type CrossAttentionLayer,
  crossAttentionLayers,
  jointAttentionLayers,
  type JointSequence,
  type OutputSpaceLayer,
  readAttentionGraph,
} from "./attention-graph.ts";

/**
 * Bytes per item (layers × image tokens × text tokens × 4, one head) up to which a transformer's
 * joint-attention blocks come back layer by layer and head by head (64 MiB). Above it (FLUX.1 at
 * 1,024²: 57 × 4,096 × 512 × 4 = 478 MB for one head, 11 GB for its 24) they are averaged over
 * heads and summed over layers inside the graph, and the capability returns one map per item, the
 * mean over (layer, head): DAAM's mean, upsampled and clamped once instead of per (layer, head).
 *
 * @example
 * ```ts
 * import { JOINT_ATTENTION_BUDGET } from "./cross-attention.ts";
 * console.assert(57 * 4096 * 512 * 4 > JOINT_ATTENTION_BUDGET && 2 * 16 * 512 * 4 < JOINT_ATTENTION_BUDGET);
 * ```
 */
export const JOINT_ATTENTION_BUDGET: number = 64 * 2 ** 20;

/** How a transformer's joint attention is laid out and which text tokens a word is. */
export interface JointAttentionLayout extends JointSequence {
  /** image tokens in the sequence (the latent's patches) */
  readonly imageTokens: number;
  /**
   * every word of the prompt with its positions among the text tokens of the joint sequence (SD 3:
   * CLIP's 77 then T5's; FLUX.1: T5's)
   */
  wordTokens(prompt: string): readonly WordTokens[];
  /**
   * how extra concept words are streamed beside the prompt (FLUX.1), or why they are not (SD 3);
   * absent: not
   */
  readonly conceptStream?: ConceptStream | string;
}

/**
 * How a transformer streams extra concept words: which graph inputs the stream's copy of the text
 * path replaces ({@link addConceptStream}) and how each new input is fed, and the new inputs'
 * values for a list of words.
 */
export interface ConceptStream {
  /** the replaced inputs, each with its new input and whether it is fed per batch row or once */
  readonly inputs: readonly (ConceptStreamInput & { readonly kind: "item" | "shared" })[];
  /** the new inputs' values for these words (checked), by input name */
  encode(words: readonly string[]): Promise<ReadonlyMap<string, CallInput>>;
}

/** What the capability needs from the ONNX denoiser that owns it. */
export interface AttentionHost {
  /** the UNet's .onnx file */
  readonly unetPath: string;
  /** shape of the data the UNet denoises */
  readonly shape: Shape;
  /** the prompt tokenizer (context length, word token positions) */
  readonly tokenizer: Pick<ClipTokenizer, "contextLength" | "wordPositions">;
  /** ε̂ plus per-item extra outputs of an edited UNet graph (fed `callInputs` for its own inputs) */
  predictNoiseWithOutputs(
    batch: NoiseBatch,
    graph: EditedUnet,
    callInputs?: UnetRequest["callInputs"],
  ): Promise<UnetPrediction>;
}

/** An edited UNet whose bytes are dropped once its session exists (a UNet can be gigabytes). */
interface HeldUnet {
  bytes: Uint8Array;
  readonly outputs: readonly string[];
  readonly inputs?: EditedUnet["inputs"];
}

/** The extra concept words of a capability made by `withConcepts`, and the one it was made from. */
interface ConceptWords {
  /** the capability without words, which holds the streamed graph every word list shares */
  readonly parent: OnnxCrossAttention;
  /** the words, checked */
  readonly words: readonly string[];
}

/**
 * Cross-attention of an ONNX UNet. `supported()` reads the UNet graph once; the edited UNet
 * session is made on the first `predict` and kept by the host.
 *
 * @example
 * ```ts
 * import { loadOnnxDenoiser } from "./load-model.ts";
 * const model = await loadOnnxDenoiser("fixtures/models/attention-tiny", { device: "cpu" });
 * const condition = await model.encode("a red circle");
 * const { layers } = await model.attention.predict({
 *   noisy: new Float32Array(3 * 8 * 8), logSnr: new Float64Array([0]), conditions: [condition],
 * });
 * console.assert(layers[0].length === 2 && layers[0][0].width === 8 && layers[0][1].width === 4);
 * await model.dispose();
 * ```
 */
export class OnnxCrossAttention implements CrossAttention {
  readonly #host: AttentionHost;
  readonly #joint: JointAttentionLayout | undefined;
  readonly #concept: boolean;
  readonly #budget: number;
  readonly #words: ConceptWords | undefined;
  #graph: AttentionGraph | undefined;
  #edited: Promise<HeldUnet> | undefined;
  /** concept attention: the graph with the concept stream, shared by every word list */
  #streamed: Promise<HeldUnet> | undefined;
  /** a word list's encoded stream inputs */
  #encoded: Promise<ReadonlyMap<string, CallInput>> | undefined;

  /**
   * Creates the capability of one denoiser.
   *
   * @param host the denoiser whose UNet is read
   * @param joint for a diffusion transformer: how its joint attention is laid out (the maps are
   *   then its image-query × text-key blocks)
   * @param maps on a transformer, `"concept"` gives ConceptAttention's output-space maps instead
   *   (see {@link conceptAttentionBlocks})
   * @param budget bytes per item above which a transformer's joint-attention blocks are averaged
   *   over heads and layers inside the graph (see {@link JOINT_ATTENTION_BUDGET})
   * @param words internal: the extra concept words of a capability made by `withConcepts`
   */
  constructor(
    host: AttentionHost,
    joint?: JointAttentionLayout,
    maps: "attention" | "concept" = "attention",
    budget: number = JOINT_ATTENTION_BUDGET,
    words?: ConceptWords,
  ) {
    this.#host = host;
    this.#joint = joint;
    this.#concept = joint !== undefined && maps === "concept";
    this.#budget = budget;
    this.#words = words;
  }

  /**
   * Tokens in the text encoder's context (a transformer's: the text tokens of its sequence), and
   * with extra concept words one more per word.
   */
  get contextLength(): number {
    const words = this.#words?.words.length ?? 0;
    return (this.#joint?.textTokens ?? this.#host.tokenizer.contextLength) + words;
  }

  /** The extra concept words (a capability made by `withConcepts`), else undefined. */
  get concepts(): readonly string[] | undefined {
    return this.#words?.words;
  }

  /**
   * Concept attention with extra concept words, ConceptAttention's concepts: each word is encoded
   * on its own and streamed through the double-stream blocks beside the prompt
   * ({@link addConceptStream}), and its map (the softmax over image tokens of its attention output's
   * dot products with the image tokens') comes after the prompt's tokens in every block's map. The
   * image stream, and so ε̂, are the prompt's alone. Word lists share one edited graph.
   *
   * @throws {InvalidArgumentError} on maps other than concept attention, bad words (empty, blank,
   *   repeated), or a transformer without a concept stream (SD 3, with the reason)
   * @throws {ModelLoadError} for a fused-attention export or a graph without concept blocks
   */
  withConcepts(words: readonly string[]): OnnxCrossAttention {
    const root = this.#words?.parent ?? this;
    if (!root.#concept) {
      throw new InvalidArgumentError(
        `extra concept words are concept attention's; this capability gives ${
          root.#joint ? "joint-attention" : "cross-attention"
        } maps: use the model's conceptAttention (maps: "concept")`,
      );
    }
    const checked = conceptWords(words);
    root.#conceptStream();
    return new OnnxCrossAttention(root.#host, root.#joint, "concept", root.#budget, {
      parent: root,
      words: checked,
    });
  }

  /** The layout's concept stream, or the error saying why words cannot be streamed. */
  #conceptStream(): ConceptStream {
    const stream = this.#joint?.conceptStream;
    if (stream === undefined || typeof stream === "string") {
      throw new InvalidArgumentError(
        `${this.#host.unetPath}: extra concept words are not available here: ${
          stream ?? "this transformer's pipeline streams no concepts"
        }`,
      );
    }
    const graph = this.#readGraph();
    const blocks = this.#transformerLayers();
    if (typeof blocks === "string") throw new ModelLoadError(`concept maps are ${blocks}`);
    if (graph.fused.length > 0) {
      throw new ModelLoadError(
        `${graph.source} has fused attention (${graph.fused.slice(0, 3).join(", ")}): the ` +
          `concept stream copies the blocks' unfused text path, and a fused node's copy is not ` +
          `checked against ConceptAttention; export the transformer without --optimize and ` +
          `without onnxruntime's attention fusion`,
      );
    }
    return stream;
  }

  /** True when the UNet has unfused cross-attention (a transformer: joint-attention) Softmax nodes. */
  supported(): boolean {
    return this.#layers().length > 0;
  }

  /** Why a transformer's maps cannot be read (fused attention, no attention in the graph). */
  get unavailable(): string | undefined {
    if (this.#words) return this.#words.parent.unavailable;
    if (!this.#joint) return undefined;
    const layers = this.#transformerLayers();
    return typeof layers === "string" ? layers : undefined;
  }

  /** Every word of the prompt with its sub-token positions (extra concept words: see `concepts`). */
  wordTokens(prompt: string): readonly WordTokens[] {
    return this.#joint?.wordTokens(prompt) ?? this.#host.tokenizer.wordPositions(prompt);
  }

  /** The layers whose maps are returned: cross-attention, or a transformer's joint attention. */
  #layers(): readonly { readonly node: string }[] {
    if (this.#words) return this.#words.parent.#layers();
    if (!this.#joint) return this.#readGraph().layers;
    const layers = this.#transformerLayers();
    return typeof layers === "string" ? [] : layers;
  }

  /** A transformer's joint-attention layers or concept blocks, or why there are none. */
  #transformerLayers(): readonly CrossAttentionLayer[] | readonly OutputSpaceLayer[] | string {
    const graph = this.#readGraph();
    return this.#concept ? conceptAttentionBlocks(graph) : jointAttentionLayers(graph);
  }

  /**
   * ε̂ for the batch and each item's cross-attention probabilities per layer.
   *
   * @throws {ModelLoadError} for a fused-attention export or a UNet without cross-attention
   * @throws {ModelRuntimeError} when an attention output does not have the expected layout
   */
  async predict(batch: NoiseBatch): Promise<AttentionPrediction> {
    const edited = await this.#editedUnet();
    const graph = this.#readGraph();
    const callInputs = this.#words ? await this.#streamInputs(this.#words) : undefined;
    const prediction = await this.#host.predictNoiseWithOutputs(batch, edited, callInputs);
    // the host keeps the session made from the bytes (keyed by this object): not needed again
    edited.bytes = new Uint8Array(0);
    const count = this.#layers().length;
    const aggregated = this.#aggregated();
    const nodes = aggregated
      ? [`joint attention: mean over ${count} layers of each layer's head mean`]
      : this.#layers().map((layer) => layer.node);
    const layers = prediction.outputs.map((outputs) =>
      nodes.map((node, l) => {
        const output = outputs.get(edited.outputs[l]);
        if (!output) {
          throw new ModelRuntimeError(
            `${graph.source}: the edited UNet returned no ${edited.outputs[l]}`,
          );
        }
        // the graph summed the layers' head means: their mean is one map of one "head"
        const probs = aggregated ? output.data.map((v) => v / count) : output.data;
        return this.#layerMap(node, probs, output.dims);
      })
    );
    return { noise: prediction.noise, layers };
  }

  /**
   * True when a transformer's joint-attention blocks are averaged inside the graph: when one
   * item's blocks, even with one head, would exceed the budget (FLUX.1 and SD 3 at 1,024²).
   */
  #aggregated(): boolean {
    if (!this.#joint || this.#concept) return false;
    const { textTokens, imageTokens } = this.#joint;
    return this.#layers().length * imageTokens * textTokens * 4 > this.#budget;
  }

  #readGraph(): AttentionGraph {
    if (this.#words) return this.#words.parent.#readGraph();
    const path = this.#host.unetPath;
    this.#graph ??= readAttentionGraph(readFileSync(path), path);
    return this.#graph;
  }

  /** The word list's stream inputs, encoded once (a failed encoding is tried again next time). */
  #streamInputs(words: ConceptWords): Promise<ReadonlyMap<string, CallInput>> {
    if (!this.#encoded) {
      const encoded = words.parent.#conceptStream().encode(words.words);
      encoded.catch(() => this.#encoded = undefined);
      this.#encoded = encoded;
    }
    return this.#encoded;
  }

  /**
   * The transformer graph with the concept stream and every concept block's map [B, h·w, T + C]:
   * the prompt's T tokens, then the C words, each column a softmax over the image tokens.
   */
  #streamedTransformer(): Promise<HeldUnet> {
    if (!this.#streamed) {
      const streamed = (async () => {
        const stream = this.#conceptStream();
        const blocks = this.#transformerLayers() as readonly OutputSpaceLayer[];
        const bytes = await Deno.readFile(this.#host.unetPath);
        const edited = addConceptStream(bytes, blocks, stream.inputs);
        const maps = addOutputSpaceMaps(edited.bytes, edited.blocks);
        return { ...maps, inputs: stream.inputs.map(({ name, kind }) => ({ name, kind })) };
      })();
      streamed.catch(() => this.#streamed = undefined);
      this.#streamed = streamed;
    }
    return this.#streamed;
  }

  #editedUnet(): Promise<HeldUnet> {
    if (this.#words) return this.#words.parent.#streamedTransformer();
    if (!this.#edited) {
      const edited = (async () => {
        if (this.#joint) return await this.#editedTransformer(this.#joint);
        const layers = crossAttentionLayers(this.#readGraph());
        const bytes = await Deno.readFile(this.#host.unetPath);
        const outputs = layers.map((layer) => layer.output);
        return { bytes: addGraphOutputs(bytes, outputs), outputs };
      })();
      edited.catch(() => this.#edited = undefined);
      this.#edited = edited;
    }
    return this.#edited;
  }

  /** A transformer graph returning each joint-attention layer's image × text block. */
  async #editedTransformer(joint: JointAttentionLayout): Promise<HeldUnet> {
    const layers = this.#transformerLayers();
    if (typeof layers === "string") throw new ModelLoadError(`attention maps are ${layers}`);
    const bytes = await Deno.readFile(this.#host.unetPath);
    return this.#concept
      ? addOutputSpaceMaps(bytes, layers as readonly OutputSpaceLayer[])
      : addJointAttentionBlocks(
        bytes,
        layers as readonly CrossAttentionLayer[],
        joint,
        this.#aggregated(),
      );
  }

  /**
   * One item's probabilities as a layer map: dims [heads, HW, tokens] (from [B·heads, HW, tokens])
   * or [1, heads, HW, tokens] (from [B, heads, HW, tokens]); the grid keeps the data's aspect ratio.
   */
  #layerMap(node: string, probs: Float32Array, dims: readonly number[]): AttentionLayerMap {
    const tokens = this.contextLength;
    const shape = dims.length === 4 && dims[0] === 1 ? dims.slice(1) : dims;
    const [heads, cells, last] = shape;
    const [, dataHeight, dataWidth] = this.#host.shape;
    // a layer downsamples both axes by the same factor f: cells = (H/f)·(W/f)
    const factor = Math.sqrt((dataHeight * dataWidth) / cells);
    const height = Math.round(dataHeight / factor), width = Math.round(dataWidth / factor);
    if (shape.length !== 3 || last !== tokens || height * width !== cells) {
      throw new ModelRuntimeError(
        `${this.#host.unetPath}: cross-attention output of ${node} has per-item dims [${dims}]; ` +
          `expected [heads, h·w, ${tokens}] with h×w a downsampling of the ` +
          `${dataHeight}×${dataWidth} data`,
      );
    }
    return { node, heads, height, width, tokens, probs };
  }
}

/**
 * ConceptAttention's default blocks (its diffusers FLUX.1 code, `concept_attention_layers`
 * range(10, 18): double-stream blocks 10–17 of 19); a transformer with none of those blocks (SD 3's
 * 24 MMDiT blocks have them; the tiny test transformers do not) uses all its blocks that return a
 * text output.
 */
export const CONCEPT_ATTENTION_BLOCKS: readonly number[] = Object.freeze(
  Array.from({ length: 8 }, (_, i) => 10 + i),
);

/**
 * The blocks whose output-space maps concept attention averages, or why there are none.
 *
 * @example
 * ```ts
 * import { conceptAttentionBlocks } from "./cross-attention.ts";
 * const block = (index: number) => ({ node: `/transformer_blocks.${index}`, index, image: "i", text: "t" });
 * const graph = { source: "t.onnx", layers: [], fused: [], externalData: false };
 * const blocks = conceptAttentionBlocks({ ...graph, outputSpace: [0, 9, 10, 17, 18].map(block) });
 * console.assert(typeof blocks !== "string" && blocks.map((b) => b.index).join() === "10,17");
 * console.assert(conceptAttentionBlocks({ ...graph, outputSpace: [block(0)] }).length === 1);
 * ```
 */
export function conceptAttentionBlocks(
  graph: AttentionGraph,
): readonly OutputSpaceLayer[] | string {
  const blocks = graph.outputSpace ?? [];
  if (blocks.length === 0) {
    return `unavailable: ${graph.source} has no transformer block with both attention outputs ` +
      `(".../transformer_blocks.N/attn/to_out.0/" and ".../to_add_out/"), which concept attention ` +
      `compares; expected a diffusers SD 3 or FLUX.1 transformer export`;
  }
  const chosen = blocks.filter((block) => CONCEPT_ATTENTION_BLOCKS.includes(block.index));
  return chosen.length > 0 ? chosen : blocks;
}
