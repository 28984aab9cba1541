/**
 * Reading and editing a UNet's ONNX graph to expose its cross-attention probabilities
 * (REFERENCE §5, last paragraph): unfused exports compute them in `Softmax` nodes under
 * `.../attn2/...` with output [B·heads, HW, tokens]; adding those values as graph outputs makes
 * onnxruntime return them next to `out_sample`.
 *
 * The graph is read with `onnx-proto` (protobufjs code generated from onnx.proto). The edit does
 * not re-serialise the decoded model: it appends the new `output` entries to the original bytes of
 * the `graph` field (protobuf concatenates repeated fields), so every other byte, including fields
 * newer than the ONNX version onnx-proto was generated from and every `external_data` location,
 * stays exactly as exported.
 *
 * @module
 */
import onnxProto from "npm:onnx-proto@8.0.1";
import { ModelLoadError } from "../../errors.ts";
import { decodeModelProto } from "./model-proto.ts";
import { LENGTH_DELIMITED, protobufFields } from "../sd/protobuf.ts";

const { onnx } = onnxProto;

/** One cross-attention layer: its Softmax node and the value it outputs. */
export interface CrossAttentionLayer {
  /** the Softmax node's name, e.g. `/down_blocks.0/attentions.0/transformer_blocks.0/attn2/Softmax` */
  readonly node: string;
  /** the node's output value (the probabilities), exposed as a graph output by the edit */
  readonly output: string;
  /**
   * for a fused `MultiHeadAttention` of a transformer block: the query and key it is given, from
   * which the edit computes `output` = softmax(Q·Kᵀ·scale) itself
   */
  readonly fromQueryKey?: FusedQueryKey;
}

/** What a fused MultiHeadAttention node still exposes: its query, key and how to read them. */
export interface FusedQueryKey {
  /** the query [B, S, heads·d] */
  readonly query: string;
  /** the key */
  readonly key: string;
  /** the key's layout: [B, heads, L, d] (`"BNSH"`) or [B, L, heads·d] (`"BSD"`) */
  readonly keyLayout: "BNSH" | "BSD";
  /** the node's num_heads */
  readonly heads: number;
  /** the node's scale; 0: the default 1/√d */
  readonly scale: number;
}

/** One transformer block's attention outputs, after their projections (`to_out.0`, `to_add_out`). */
export interface OutputSpaceLayer {
  /** the block, e.g. `/transformer_blocks.3` */
  readonly node: string;
  /** the block's index among its kind */
  readonly index: number;
  /** the image tokens' attention output [B, h·w, D] */
  readonly image: string;
  /** the text tokens' attention output [B, T, D] */
  readonly text: string;
}

/** What a UNet graph holds that matters for attention maps. */
export interface AttentionGraph {
  /** the file the graph came from, for messages */
  readonly source: string;
  /** cross-attention Softmax layers, in graph order */
  readonly layers: readonly CrossAttentionLayer[];
  /**
   * joint-attention Softmax layers of a diffusion transformer (SD 3's MMDiT `transformer_blocks`,
   * FLUX.1's double-stream `transformer_blocks` and single-stream `single_transformer_blocks`), in
   * graph order: probabilities over the concatenated text and image sequence
   */
  readonly joint?: readonly CrossAttentionLayer[];
  /**
   * blocks whose attention returns both an image and a text output (SD 3's MMDiT blocks but its
   * last, `context_pre_only`; FLUX.1's double-stream blocks), in block order: what concept
   * attention compares
   */
  readonly outputSpace?: readonly OutputSpaceLayer[];
  /** fused attention nodes (`op_type "name"`), e.g. com.microsoft MultiHeadAttention */
  readonly fused: readonly string[];
  /** true when some initializer keeps its data in an external file */
  readonly externalData: boolean;
}

/** Operators that compute attention in one node, hiding the probabilities. */
const FUSED_ATTENTION_OPS = new Set([
  "Attention",
  "MultiHeadAttention",
  "PackedAttention",
  "PackedMultiHeadAttention",
  "GroupQueryAttention",
  "DecoderMaskedMultiHeadAttention",
  "DecoderMaskedSelfAttention",
  "MultiHeadAttentionFused",
  "ScaledDotProductAttention",
]);

/** How to get an export whose attention maps can be read; part of the refusal messages. */
export const UNFUSED_EXPORT_HELP: string =
  "Export the UNet unfused: with torch.onnx.export after switching diffusers to eager attention " +
  "(pipe.unet.set_attn_processor(AttnProcessor()), which writes softmax(QKᵀ·scale) as a Softmax " +
  "node), or with `optimum-cli export onnx` WITHOUT --optimize and without onnxruntime's " +
  "transformer optimizer, whose attention fusion replaces those nodes by MultiHeadAttention";

/**
 * Finds the cross-attention Softmax nodes (op `Softmax` whose name or output contains `attn2`) and
 * any fused attention nodes of a serialized ONNX model.
 *
 * @param bytes the `model.onnx` file's contents
 * @param source its path, for messages
 * @throws {ModelLoadError} when the bytes are not an ONNX model
 *
 * @example
 * ```ts
 * import { readAttentionGraph } from "./attention-graph.ts";
 * const path = "fixtures/models/attention-tiny/unet/model.onnx";
 * const graph = readAttentionGraph(Deno.readFileSync(path), path);
 * console.assert(graph.layers.length === 2 && graph.fused.length === 0);
 * ```
 */
export function readAttentionGraph(bytes: Uint8Array, source: string): AttentionGraph {
  const model = decodeModelProto(bytes, source);
  const graph = model.graph;
  if (!graph) throw new ModelLoadError(`${source} has no graph; expected an ONNX model with one`);
  const layers: CrossAttentionLayer[] = [];
  const joint: CrossAttentionLayer[] = [];
  const fused: string[] = [];
  // the last node of each block's projection (Linear exports as MatMul then Add) gives its output
  const projections = new Map<string, { image?: string; text?: string }>();
  const producers = new Map((graph.node ?? []).flatMap((n) => (n.output ?? []).map((o) => [o, n])));
  const fromQueryKey: CrossAttentionLayer[] = [];
  for (const node of graph.node ?? []) {
    const op = node.opType ?? "";
    const name = node.name ?? "";
    const output = node.output?.[0] ?? "";
    const standard = !node.domain || node.domain === "ai.onnx";
    if (op === "Softmax" && standard && (name.includes("attn2") || output.includes("attn2"))) {
      layers.push({ node: name || output, output });
    } else if (op === "Softmax" && standard && JOINT_ATTENTION.test(name || output)) {
      joint.push({ node: name || output, output });
    } else if (PROJECTION.test(name)) {
      const [, block, which] = name.match(PROJECTION)!;
      const entry = projections.get(block) ?? {};
      entry[which === "to_out.0" ? "image" : "text"] = output;
      projections.set(block, entry);
    } else if (FUSED_ATTENTION_OPS.has(op)) {
      fused.push(`${node.domain ? `${node.domain}.` : ""}${op} "${name || output}"`);
      const layer = fusedJointLayer(node, producers);
      if (layer) fromQueryKey.push(layer);
    }
  }
  // a fused export whose every attention still shows Q and K: the probabilities are recomputed
  if (joint.length === 0 && fromQueryKey.length > 0 && fromQueryKey.length === fused.length) {
    joint.push(...fromQueryKey);
  }
  const externalData = (graph.initializer ?? []).some((t) =>
    t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL
  );
  const outputSpace = [...projections].flatMap(([node, { image, text }]) =>
    image && text ? [{ node, index: Number(node.split(".").pop()), image, text }] : []
  );
  return { source, layers, joint, outputSpace, fused, externalData };
}

type NodeMessage = NonNullable<
  NonNullable<Parameters<typeof onnx.GraphProto.encode>[0]>["node"]
>[number];

/**
 * A transformer block's fused com.microsoft MultiHeadAttention as a joint-attention layer whose
 * probabilities are recomputed from its query and key, where that can be done exactly: separate
 * query and key (not packed), no bias, mask or attention bias input, and a key whose layout its
 * producer shows (a Concat over axis 2 of [B, heads, L, d], as onnxruntime's mmdit fusion leaves it;
 * axis 1 of [B, L, D]). Otherwise undefined: the export is refused as fused.
 */
function fusedJointLayer(
  node: NodeMessage,
  producers: Map<string, NodeMessage>,
): CrossAttentionLayer | undefined {
  const [query, key, value, ...rest] = node.input ?? [];
  const block = query?.match(/^(\/(?:single_)?transformer_blocks\.\d+\/attn\/)/)?.[1];
  if (node.opType !== "MultiHeadAttention" || !block || !key || !value) return undefined;
  if (rest.some((input) => input !== "")) return undefined;
  const attribute = (name: string) => node.attribute?.find((a) => a.name === name);
  const heads = Number(attribute("num_heads")?.i ?? 0);
  const producer = producers.get(key);
  const axis = producer?.opType === "Concat"
    ? Number(producer.attribute?.find((a) => a.name === "axis")?.i ?? -99)
    : undefined;
  const keyLayout = axis === 2 ? "BNSH" : axis === 1 ? "BSD" : undefined;
  if (heads <= 0 || !keyLayout) return undefined;
  return {
    node: `${block}${node.name || "MultiHeadAttention"}`,
    output: `${block}infodiff_probs`,
    fromQueryKey: { query, key, keyLayout, heads, scale: attribute("scale")?.f ?? 0 },
  };
}

/** Nodes computing softmax(Q·Kᵀ·scale) [B, heads, S, L] of a fused attention's query and key. */
function probabilityNodes(layer: CrossAttentionLayer, prefix: string) {
  const { query, key, keyLayout, heads, scale } = layer.fromQueryKey!;
  const at = (what: string) => `${layer.output}_${what}`;
  const ints = (name: string, values: number[]) => ({
    name,
    type: onnx.AttributeProto.AttributeType.INTS,
    ints: values,
  });
  const initializer = [int64Tensor(at("split_heads"), [0n, 0n, BigInt(heads), -1n])];
  const node: NodeMessage[] = [];
  const toHeads = (from: string, name: string) => {
    node.push(
      {
        name: at(`${name}_reshape`),
        opType: "Reshape",
        input: [from, at("split_heads")],
        output: [at(`${name}_bshd`)],
      },
      {
        name: at(`${name}_transpose`),
        opType: "Transpose",
        input: [at(`${name}_bshd`)],
        output: [at(name)],
        attribute: [ints("perm", [0, 2, 1, 3])],
      },
    );
    return at(name);
  };
  const q = toHeads(query, "q");
  const k = keyLayout === "BNSH" ? key : toHeads(key, "k");
  node.push(
    {
      name: at("kt"),
      opType: "Transpose",
      input: [k],
      output: [at("kt")],
      attribute: [ints("perm", [0, 1, 3, 2])],
    },
    { name: at("scores"), opType: "MatMul", input: [q, at("kt")], output: [at("scores")] },
  );
  let scaled: string;
  if (scale > 0) {
    initializer.push({
      name: at("scale"),
      dims: [],
      dataType: onnx.TensorProto.DataType.FLOAT,
      rawData: new Uint8Array(Float32Array.of(scale).buffer),
    });
    node.push({
      name: at("scaled"),
      opType: "Mul",
      input: [at("scores"), at("scale")],
      output: [at("scaled")],
    });
    scaled = at("scaled");
  } else {
    // the default scale 1/√d, d read from q's shape [B, heads, S, d]
    initializer.push(int64Tensor(at("last"), [3n]));
    node.push(
      { name: at("shape"), opType: "Shape", input: [q], output: [at("shape")] },
      { name: at("d"), opType: "Gather", input: [at("shape"), at("last")], output: [at("d")] },
      {
        name: at("d_float"),
        opType: "Cast",
        input: [at("d")],
        output: [at("d_float")],
        attribute: [{
          name: "to",
          type: onnx.AttributeProto.AttributeType.INT,
          i: onnx.TensorProto.DataType.FLOAT,
        }],
      },
      { name: at("sqrt_d"), opType: "Sqrt", input: [at("d_float")], output: [at("sqrt_d")] },
      {
        name: at("scaled"),
        opType: "Div",
        input: [at("scores"), at("sqrt_d")],
        output: [at("scaled")],
      },
    );
    scaled = at("scaled");
  }
  node.push({
    name: `${layer.output}_${prefix}_softmax`,
    opType: "Softmax",
    input: [scaled],
    output: [layer.output],
    attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
  });
  return { node, initializer };
}

/** A node of a double-stream block's output projections: `/transformer_blocks.N/attn/to_out.0/…`. */
const PROJECTION = /^(\/transformer_blocks\.\d+)\/attn\/(to_out\.0|to_add_out)\//;

/**
 * The attention of a diffusers transformer block, as the TorchScript exporter names its nodes:
 * `/transformer_blocks.N/attn/…` (SD 3, FLUX.1 double-stream) or
 * `/single_transformer_blocks.N/attn/…` (FLUX.1 single-stream). SD 3.5's second attention of a
 * dual block (`attn2`, image self-attention only) does not match: it has no text keys.
 */
const JOINT_ATTENTION = /(^|\/)(single_)?transformer_blocks\.\d+\/attn\//;

/**
 * The joint-attention layers of a transformer graph, or the reason they cannot be read: a
 * fused-attention export, or a graph without joint-attention Softmax nodes (e.g. the exact-Gaussian
 * fixtures, whose network has no attention at all).
 *
 * @returns the layers, or a string saying why there are none
 *
 * @example
 * ```ts
 * import { jointAttentionLayers, readAttentionGraph } from "./attention-graph.ts";
 * const path = "fixtures/models/tiny-flux/transformer/model.onnx";
 * const layers = jointAttentionLayers(readAttentionGraph(Deno.readFileSync(path), path));
 * console.assert(typeof layers !== "string" && layers.length === 2);
 * ```
 */
export function jointAttentionLayers(
  graph: AttentionGraph,
): readonly CrossAttentionLayer[] | string {
  if (graph.joint && graph.joint.length > 0) return graph.joint;
  if (graph.fused.length > 0) {
    return `unavailable: ${graph.source} has fused attention (${graph.fused.length} node(s) such ` +
      `as ${graph.fused.slice(0, 3).join(", ")}), which hides the joint-attention probabilities; ` +
      `export the transformer without --optimize and without onnxruntime's attention fusion`;
  }
  return `unavailable: ${graph.source} has no joint-attention Softmax node under ` +
    `".../transformer_blocks.N/attn/" or ".../single_transformer_blocks.N/attn/" (the ` +
    `probabilities over the joint [text; image] sequence); expected a diffusers SD 3 or FLUX.1 ` +
    `transformer exported with eager attention`;
}

/** Where the image and text tokens lie in a joint-attention sequence. */
export interface JointSequence {
  /** `"image-text"`: [image; text] (SD 3's JointAttnProcessor); `"text-image"`: FLUX.1's */
  readonly order: "image-text" | "text-image";
  /** text tokens in the sequence */
  readonly textTokens: number;
}

/**
 * Adds to a transformer graph, for each joint-attention layer, a `Slice` of its probabilities
 * [B, heads, N, N] to the block of image queries × text keys [B, heads, h·w, T], exposed as a graph
 * output: onnxruntime hands back only the block, never the N×N matrix (4,608² × 24 heads, 2 GB a
 * layer for FLUX.1 at 1,024²). The rest of the model's bytes are left as exported.
 *
 * With `aggregate`, the blocks are averaged over heads (`ReduceMean`) and summed over layers
 * (`Add`) inside the graph: one output [B, h·w, T] per call, the sum over layers of each layer's
 * head mean, so no layer's block leaves onnxruntime (FLUX.1 at 1,024²: 8 MB an item instead of
 * 57 layers × 24 heads × 4,096 × 512 × 4 bytes = 11 GB).
 *
 * @returns the edited ModelProto and the outputs' names: one per layer in order, or the one sum
 *
 * @example
 * ```ts
 * import { addJointAttentionBlocks, readAttentionGraph } from "./attention-graph.ts";
 * import onnxProto from "npm:onnx-proto@8.0.1";
 * const path = "fixtures/models/tiny-sd3/transformer/model.onnx";
 * const bytes = Deno.readFileSync(path);
 * const layers = readAttentionGraph(bytes, path).joint!;
 * const edited = addJointAttentionBlocks(bytes, layers, { order: "image-text", textTokens: 333 });
 * const graph = onnxProto.onnx.ModelProto.decode(edited.bytes).graph!;
 * console.assert(edited.outputs.length === 2 && graph.output!.length === 3);
 * ```
 */
export function addJointAttentionBlocks(
  bytes: Uint8Array,
  layers: readonly CrossAttentionLayer[],
  sequence: JointSequence,
  aggregate = false,
): { bytes: Uint8Array; outputs: string[] } {
  const t = BigInt(sequence.textTokens), end = 2n ** 63n - 1n;
  // rows then columns (axes −2, −1): [image; text] → rows [0, N−T), columns [N−T, N)
  const [starts, ends] = sequence.order === "image-text"
    ? [[0n, -t], [-t, end]]
    : [[t, 0n], [end, t]];
  const prefix = "infodiff_joint_block";
  const initializer = [
    int64Tensor(`${prefix}_starts`, starts),
    int64Tensor(`${prefix}_ends`, ends),
    int64Tensor(`${prefix}_axes`, [-2n, -1n]),
  ];
  const blocks = layers.map((layer) => `${layer.output}/${prefix}`);
  const recomputed = layers.filter((layer) => layer.fromQueryKey).map((layer) =>
    probabilityNodes(layer, prefix)
  );
  const slices = layers.map((layer, i) => ({
    name: `${layer.node}/${prefix}`,
    opType: "Slice",
    input: [layer.output, ...initializer.slice(0, 3).map((tensor) => tensor.name)],
    output: [blocks[i]],
  }));
  // onnxruntime orders the nodes by a depth-first walk back from the graph's leaves, the last
  // added first: with the first layer's Slice added last, each Slice runs right after its own
  // block and that block's probabilities ([heads, N, N], 2 GB a block at FLUX.1's 1,024²) are freed
  // there; in layer order every Slice ran after the last block, holding all of them until then.
  // The Slice nodes read their layer's recomputed probabilities, added before them.
  const node: NonNullable<GraphMessage["node"]> = [
    ...recomputed.flatMap((r) => r.node),
    ...slices.reverse(),
  ];
  initializer.push(...recomputed.flatMap((r) => r.initializer));
  if (!aggregate) {
    return { bytes: appendToGraph(bytes, { node, initializer, output: blocks }), outputs: blocks };
  }
  // ReduceMean takes its axes as an input from opset 18, as an attribute before
  const opset = defaultOpset(bytes);
  const heads = opset >= 18 ? { input: [`${prefix}_heads`] } : {
    attribute: [{ name: "axes", type: onnx.AttributeProto.AttributeType.INTS, ints: [1] }],
  };
  if (opset >= 18) initializer.push(int64Tensor(`${prefix}_heads`, [1n]));
  const means = layers.map((layer, i) => {
    const mean = `${blocks[i]}_head_mean`;
    node.push({
      name: `${layer.node}/${prefix}_head_mean`,
      opType: "ReduceMean",
      input: [blocks[i], ...(heads.input ?? [])],
      output: [mean],
      attribute: [
        ...(heads.attribute ?? []),
        { name: "keepdims", type: onnx.AttributeProto.AttributeType.INT, i: 0 },
      ],
    });
    return mean;
  });
  let sum = means[0];
  means.slice(1).forEach((mean, i) => {
    const next = `${prefix}_layer_sum_${i + 1}`;
    node.push({ name: next, opType: "Add", input: [sum, mean], output: [next] });
    sum = next;
  });
  return { bytes: appendToGraph(bytes, { node, initializer, output: [sum] }), outputs: [sum] };
}

/** The model's opset of the default ONNX domain. */
function defaultOpset(bytes: Uint8Array): number {
  const imports = decodeModelProto(bytes, "the transformer").opsetImport ?? [];
  const standard = imports.find((o) => !o.domain || o.domain === "ai.onnx");
  return Number(standard?.version ?? 0);
}

/**
 * Adds to a transformer graph, for each block, ConceptAttention's output-space map with the
 * prompt's tokens as the concepts: the dot products of every image token's attention output with
 * every text token's ([B, h·w, D] × [B, T, D]ᵀ), softmaxed over the image tokens (as
 * ConceptAttention's diffusers FLUX pipeline does, `softmax(dim=-1)` of [concepts, patches]),
 * exposed as graph outputs [B, h·w, T].
 *
 * @returns the edited ModelProto and the maps' output names, one per block in order
 *
 * @example
 * ```ts
 * import { addOutputSpaceMaps, readAttentionGraph } from "./attention-graph.ts";
 * const path = "fixtures/models/tiny-flux/transformer/model.onnx";
 * const bytes = Deno.readFileSync(path);
 * const blocks = readAttentionGraph(bytes, path).outputSpace!;
 * console.assert(addOutputSpaceMaps(bytes, blocks).outputs.length === 1);
 * ```
 */
export function addOutputSpaceMaps(
  bytes: Uint8Array,
  blocks: readonly OutputSpaceLayer[],
): { bytes: Uint8Array; outputs: string[] } {
  const prefix = "infodiff_concept";
  const outputs = blocks.map((block) => `${block.node}/${prefix}_map`);
  const name = (block: OutputSpaceLayer, what: string) => `${block.node}/${prefix}_${what}`;
  const transpose = (block: OutputSpaceLayer, from: string, to: string) => ({
    name: name(block, `${to}_transpose`),
    opType: "Transpose",
    input: [from],
    output: [to],
    attribute: [{ name: "perm", type: onnx.AttributeProto.AttributeType.INTS, ints: [0, 2, 1] }],
  });
  // scores [B, T, h·w] softmaxed over the last axis, which every opset's Softmax reads alike
  const node = blocks.flatMap((block, i) => [
    transpose(block, block.image, name(block, "image_t")),
    {
      name: name(block, "scores"),
      opType: "MatMul",
      input: [block.text, name(block, "image_t")],
      output: [name(block, "scores")],
    },
    {
      name: name(block, "softmax"),
      opType: "Softmax",
      input: [name(block, "scores")],
      output: [name(block, "probs")],
      attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: -1 }],
    },
    transpose(block, name(block, "probs"), outputs[i]),
  ]);
  return { bytes: appendToGraph(bytes, { node, output: outputs }), outputs };
}

/** A graph input that the concept stream's copy of the text path reads instead of the prompt's. */
export interface ConceptStreamInput {
  /** the graph input it replaces in the copy, e.g. `encoder_hidden_states` */
  readonly replaces: string;
  /** the new input's name */
  readonly name: string;
  /**
   * the axis that counts the concepts (the replaced input's text-token axis: 1 of
   * `encoder_hidden_states`, 0 of FLUX.1's rank-2 `txt_ids`); absent for a per-item vector
   */
  readonly conceptAxis?: number;
}

/**
 * Adds ConceptAttention's concept stream to a transformer graph: a second text stream through the
 * double-stream blocks, which leaves every original node and value as exported (the image and
 * prompt streams, and so the prediction, are unchanged).
 *
 * The stream is a copy of every node that depends on the replaced inputs (the text states, the
 * pooled vector of the time-text embedding, the text ids of the rotary embedding), reading the new
 * inputs instead, except that each block's normalised image states — the input of its `to_q`,
 * `to_k`, `to_v` projections — are the original ones: so, as in ConceptAttention's
 * `FluxTransformerBlockWithConceptAttention`, the concept tokens are modulated by their own
 * time-text embedding, attend over [concepts; image] with the block's own image keys and values,
 * and update their states (`to_add_out`, gate, `norm2_context`, `ff_context`) from block to block.
 * Only the copied nodes the kept blocks' concept outputs need are added.
 *
 * @param blocks the blocks whose concept outputs are compared ({@link OutputSpaceLayer})
 * @param inputs the inputs the copy replaces, each with its new input
 * @returns the edited ModelProto and the blocks with `text` = [the prompt's text outputs; the
 *   concepts'] (concatenated over tokens), for {@link addOutputSpaceMaps}
 * @throws {ModelLoadError} when a replaced input is not in the graph, a double-stream block does
 *   not show its image projections, a subgraph would need copying, or the copy does not reach a
 *   block's text output
 *
 * @example
 * ```ts
 * import { addConceptStream, addOutputSpaceMaps, readAttentionGraph } from "./attention-graph.ts";
 * const path = "fixtures/models/tiny-flux/transformer/model.onnx";
 * const bytes = Deno.readFileSync(path);
 * const streamed = addConceptStream(bytes, readAttentionGraph(bytes, path).outputSpace!, [
 *   { replaces: "encoder_hidden_states", name: "concept_hidden_states", conceptAxis: 1 },
 *   { replaces: "pooled_projections", name: "concept_pooled_projections" },
 *   { replaces: "txt_ids", name: "concept_ids", conceptAxis: 0 },
 * ]);
 * const maps = addOutputSpaceMaps(streamed.bytes, streamed.blocks);
 * console.assert(maps.outputs.length === 1 && streamed.blocks[0].text.endsWith("concept_text"));
 * ```
 */
export function addConceptStream(
  bytes: Uint8Array,
  blocks: readonly OutputSpaceLayer[],
  inputs: readonly ConceptStreamInput[],
): { bytes: Uint8Array; blocks: OutputSpaceLayer[] } {
  const graph = decodeModelProto(bytes, "the transformer").graph!;
  const suffix = "/infodiff_concept";
  const copyOf = new Map<string, string>();
  const added = inputs.map((input) => {
    const original = graph.input?.find((i) => i.name === input.replaces);
    if (!original) {
      throw new ModelLoadError(
        `the transformer has no input ${input.replaces}, which the concept stream replaces; ` +
          `expected a diffusers transformer export`,
      );
    }
    copyOf.set(input.replaces, input.name);
    return conceptInputInfo(original, input);
  });
  const frozen = imageProjectionInputs(graph.node ?? []);
  const copies: NodeMessage[] = [];
  for (const node of graph.node ?? []) {
    if (!(node.input ?? []).some((name) => copyOf.has(name))) continue;
    if ((node.attribute ?? []).some((a) => a.g || (a.graphs ?? []).length > 0)) {
      throw new ModelLoadError(
        `the transformer's node ${node.name} holds a subgraph that reads the text; the concept ` +
          `stream copies plain nodes only`,
      );
    }
    const output = (node.output ?? []).map((name) => name && `${name}${suffix}`);
    copies.push({
      ...node,
      name: `${node.name ?? ""}${suffix}`,
      input: (node.input ?? []).map((name) => copyOf.get(name) ?? name),
      output,
    });
    // the image states a block projects stay the prompt stream's
    (node.output ?? []).forEach((name, i) =>
      name && !frozen.has(name) && copyOf.set(name, output[i])
    );
  }
  const targets = blocks.map((block) => {
    const copy = copyOf.get(block.text);
    if (!copy) {
      throw new ModelLoadError(
        `the concept stream does not reach ${block.node}'s text output ${block.text}; expected a ` +
          `double-stream block whose text path reads encoder_hidden_states`,
      );
    }
    return copy;
  });
  const node = [...neededNodes(copies, targets)];
  const concatenated = blocks.map((block, i) => {
    const text = `${block.node}/infodiff_concept_text`;
    node.push({
      name: text,
      opType: "Concat",
      input: [block.text, targets[i]],
      output: [text],
      attribute: [{ name: "axis", type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
    });
    return { ...block, text };
  });
  return { bytes: appendToGraph(bytes, { node, input: added }), blocks: concatenated };
}

/**
 * The normalised image states of every double-stream block: the input of its image projections
 * (`/transformer_blocks.N/attn/to_q/MatMul`, `to_k`, `to_v`). A block with a text projection
 * (`add_q_proj`…) but not those three is refused: its image side could not be kept.
 */
function imageProjectionInputs(nodes: readonly NodeMessage[]): Set<string> {
  const frozen = new Set<string>();
  const found = new Map<string, Set<string>>();
  for (const node of nodes) {
    const match = (node.name ?? "").match(
      /^(\/transformer_blocks\.\d+)\/attn\/(to_[qkv]|add_q_proj)\/MatMul$/,
    );
    if (!match) continue;
    const seen = found.get(match[1]) ?? new Set();
    seen.add(match[2]);
    found.set(match[1], seen);
    if (match[2] !== "add_q_proj") frozen.add(node.input![0]);
  }
  for (const [block, seen] of found) {
    if (seen.has("add_q_proj") && !["to_q", "to_k", "to_v"].every((p) => seen.has(p))) {
      throw new ModelLoadError(
        `${block}: the block projects its text but shows no separate image projections ` +
          `(attn/to_q, to_k, to_v MatMul nodes), so the concept stream cannot keep its image ` +
          `states; expected an unfused diffusers export`,
      );
    }
  }
  return frozen;
}

/** The nodes (of `nodes`, in their order) that the values `targets` depend on. */
function neededNodes(nodes: readonly NodeMessage[], targets: readonly string[]): NodeMessage[] {
  const wanted = new Set(targets);
  const kept: NodeMessage[] = [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const node = nodes[i];
    if (!(node.output ?? []).some((name) => wanted.has(name))) continue;
    kept.push(node);
    for (const name of node.input ?? []) wanted.add(name);
  }
  return kept.reverse();
}

type ValueInfoMessage = NonNullable<GraphMessage["input"]>[number];

/** The new input's ValueInfo: the replaced input's type, its concept axis of any length. */
function conceptInputInfo(original: ValueInfoMessage, input: ConceptStreamInput): ValueInfoMessage {
  const tensor = original.type?.tensorType;
  const dims = tensor?.shape?.dim ?? [];
  return {
    name: input.name,
    type: {
      tensorType: {
        elemType: tensor?.elemType,
        shape: {
          dim: dims.map((d, axis) =>
            axis === input.conceptAxis ? { dimParam: "infodiff_concepts" } : d
          ),
        },
      },
    },
  };
}

function int64Tensor(name: string, values: readonly bigint[]) {
  const raw = new Uint8Array(BigInt64Array.from(values).buffer);
  return { name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: raw };
}

/**
 * The cross-attention layers of a graph, or a {@link ModelLoadError} saying why there are none: a
 * fused-attention export (with how to get an unfused one) or a UNet without cross-attention.
 *
 * @example
 * ```ts
 * import { crossAttentionLayers } from "./attention-graph.ts";
 * const graph = { source: "unet/model.onnx", layers: [], fused: ['com.microsoft.MultiHeadAttention "a"'], externalData: false };
 * try { crossAttentionLayers(graph); } catch (error) { console.assert(String(error).includes("fused")); }
 * ```
 */
export function crossAttentionLayers(graph: AttentionGraph): readonly CrossAttentionLayer[] {
  if (graph.layers.length > 0) return graph.layers;
  if (graph.fused.length > 0) {
    const shown = graph.fused.slice(0, 3).join(", ");
    throw new ModelLoadError(
      `${graph.source}: this UNet export has fused attention (${graph.fused.length} node(s) such ` +
        `as ${shown}) and no cross-attention Softmax nodes under ".../attn2/", so its attention ` +
        `probabilities cannot be read. ${UNFUSED_EXPORT_HELP}.`,
    );
  }
  throw new ModelLoadError(
    `${graph.source}: the UNet has no Softmax node whose name or output contains "attn2" ` +
      `(cross-attention probabilities [B·heads, HW, tokens]); expected an unfused Stable ` +
      `Diffusion UNet export. ${UNFUSED_EXPORT_HELP}.`,
  );
}

/**
 * Adds values as graph outputs (name only: onnxruntime infers type and shape), leaving every other
 * byte of the model as it was, external-data locations included. Names that already are outputs
 * are skipped.
 *
 * @param bytes a serialized ONNX ModelProto
 * @param names values computed inside the graph
 * @returns the edited ModelProto
 * @throws {ModelLoadError} when the bytes are not a ModelProto with a graph
 *
 * @example
 * ```ts
 * import { addGraphOutputs, readAttentionGraph } from "./attention-graph.ts";
 * import onnxProto from "npm:onnx-proto@8.0.1";
 * const path = "fixtures/models/attention-tiny/unet/model.onnx";
 * const bytes = Deno.readFileSync(path);
 * const names = readAttentionGraph(bytes, path).layers.map((layer) => layer.output);
 * const edited = onnxProto.onnx.ModelProto.decode(addGraphOutputs(bytes, names));
 * console.assert(edited.graph!.output!.length === 3); // out_sample + 2 layers
 * ```
 */
export function addGraphOutputs(bytes: Uint8Array, names: readonly string[]): Uint8Array {
  return appendToGraph(bytes, { output: [...names] });
}

type GraphMessage = NonNullable<Parameters<typeof onnx.GraphProto.encode>[0]>;

/** Entries appended to a GraphProto: nodes, initializers, inputs and (named) outputs. */
interface GraphAdditions {
  readonly node?: GraphMessage["node"];
  readonly initializer?: GraphMessage["initializer"];
  readonly input?: GraphMessage["input"];
  readonly output?: string[];
}

/**
 * Appends nodes, initializers and outputs to the model's graph without re-serialising it: the
 * entries, encoded as a GraphProto of their own, are appended to the graph field's bytes (protobuf
 * concatenates repeated fields). Outputs that already are outputs are skipped.
 */
function appendToGraph(bytes: Uint8Array, additions: GraphAdditions): Uint8Array {
  const fields = [...protobufFields(bytes)];
  const graphs = fields.filter((f) => f.number === GRAPH_FIELD && f.wireType === LENGTH_DELIMITED);
  if (graphs.length === 0) {
    throw new ModelLoadError("the model has no graph field; expected an ONNX ModelProto");
  }
  const graph = graphs[graphs.length - 1];
  const existing = new Set(
    graphs.flatMap((g) =>
      (onnx.GraphProto.decode(bytes.subarray(g.payloadStart, g.end)).output ?? []).map((o) =>
        o.name
      )
    ),
  );
  const added = [...new Set(additions.output ?? [])].filter((name) => !existing.has(name));
  // a GraphProto holding only these entries serialises to exactly the entries to append
  const extra = onnx.GraphProto.encode({
    node: additions.node ?? [],
    initializer: additions.initializer ?? [],
    input: additions.input ?? [],
    output: added.map((name) => ({ name })),
  }).finish();
  const payloadLength = graph.end - graph.payloadStart + extra.length;
  const header = [...varint(GRAPH_FIELD * 8 + LENGTH_DELIMITED), ...varint(payloadLength)];
  const out = new Uint8Array(
    bytes.length - (graph.payloadStart - graph.start) + header.length +
      extra.length,
  );
  out.set(bytes.subarray(0, graph.start), 0);
  let at = graph.start;
  out.set(header, at);
  at += header.length;
  out.set(bytes.subarray(graph.payloadStart, graph.end), at);
  at += graph.end - graph.payloadStart;
  out.set(extra, at);
  at += extra.length;
  out.set(bytes.subarray(graph.end), at);
  return out;
}

const GRAPH_FIELD = 7; // ModelProto.graph

function varint(value: number): number[] {
  const out: number[] = [];
  while (value >= 128) {
    out.push((value % 128) | 0x80);
    value = Math.floor(value / 128);
  }
  out.push(value);
  return out;
}
