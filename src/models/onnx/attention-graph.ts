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
}

/** What a UNet graph holds that matters for attention maps. */
export interface AttentionGraph {
  /** the file the graph came from, for messages */
  readonly source: string;
  /** cross-attention Softmax layers, in graph order */
  readonly layers: readonly CrossAttentionLayer[];
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
  const fused: string[] = [];
  for (const node of graph.node ?? []) {
    const op = node.opType ?? "";
    const name = node.name ?? "";
    const output = node.output?.[0] ?? "";
    const standard = !node.domain || node.domain === "ai.onnx";
    if (op === "Softmax" && standard && (name.includes("attn2") || output.includes("attn2"))) {
      layers.push({ node: name || output, output });
    } else if (FUSED_ATTENTION_OPS.has(op)) {
      fused.push(`${node.domain ? `${node.domain}.` : ""}${op} "${name || output}"`);
    }
  }
  const externalData = (graph.initializer ?? []).some((t) =>
    t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL
  );
  return { source, layers, fused, externalData };
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
  const added = [...new Set(names)].filter((name) => !existing.has(name));
  // a GraphProto holding only outputs serialises to exactly the entries to append (field 12)
  const extra = onnx.GraphProto.encode({ output: added.map((name) => ({ name })) }).finish();
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
