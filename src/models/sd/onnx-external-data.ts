/**
 * Which external-data files an ONNX graph references, read straight from its protobuf bytes (no
 * ONNX runtime, no schema library): what a download must fetch beside each `model.onnx`.
 *
 * @module
 */
import { ModelLoadError } from "../../errors.ts";
import { LENGTH_DELIMITED, protobufFields } from "./protobuf.ts";

// Field numbers of onnx.proto3: ModelProto.graph = 7; GraphProto.node = 1, .initializer = 5,
// .sparse_initializer = 15; NodeProto.attribute = 5; AttributeProto.t = 5, .g = 6, .tensors = 10,
// .graphs = 11; SparseTensorProto.values = 1, .indices = 2; TensorProto.external_data = 13;
// StringStringEntryProto.key = 1, .value = 2.
const MODEL_GRAPH = 7;
const GRAPH = { node: 1, initializer: 5, sparseInitializer: 15 } as const;
const NODE_ATTRIBUTE = 5;
const ATTRIBUTE = { tensor: 5, graph: 6, tensors: 10, graphs: 11 } as const;
const SPARSE = { values: 1, indices: 2 } as const;
const TENSOR_EXTERNAL_DATA = 13;

/**
 * The distinct `location`s of every external-data tensor of an ONNX model (initializers, sparse
 * initializers and Constant-node tensors, in subgraphs too), in first-seen order. They are paths
 * relative to the graph file's folder.
 *
 * @example
 * ```ts
 * import { onnxExternalDataFiles } from "./onnx-external-data.ts";
 * const bytes = await Deno.readFile("fixtures/models/sd-scalart-onnxdata/unet/model.onnx");
 * console.assert(onnxExternalDataFiles(bytes, "unet/model.onnx").join() === "model.onnx_data");
 * ```
 */
export function onnxExternalDataFiles(bytes: Uint8Array, source: string): string[] {
  const found = new Set<string>();
  try {
    for (const field of fields(bytes, [0, bytes.length])) {
      if (field.number === MODEL_GRAPH) scanGraph(bytes, field.bytes, found);
    }
  } catch (error) {
    throw new ModelLoadError(`${source} is not a readable ONNX model; expected a ModelProto`, {
      cause: error,
    });
  }
  return [...found];
}

type Span = readonly [start: number, end: number];

/** The length-delimited fields of the message in `span`, with their payload spans. */
function* fields(
  bytes: Uint8Array,
  [start, end]: Span,
): Generator<{ number: number; bytes: Span }> {
  for (const field of protobufFields(bytes, start, end)) {
    if (field.wireType === LENGTH_DELIMITED) {
      yield { number: field.number, bytes: [field.payloadStart, field.end] };
    }
  }
}

function scanGraph(bytes: Uint8Array, span: Span, found: Set<string>): void {
  for (const field of fields(bytes, span)) {
    if (field.number === GRAPH.initializer) scanTensor(bytes, field.bytes, found);
    else if (field.number === GRAPH.sparseInitializer) scanSparse(bytes, field.bytes, found);
    else if (field.number === GRAPH.node) scanNode(bytes, field.bytes, found);
  }
}

function scanNode(bytes: Uint8Array, span: Span, found: Set<string>): void {
  for (const field of fields(bytes, span)) {
    if (field.number !== NODE_ATTRIBUTE) continue;
    for (const inner of fields(bytes, field.bytes)) {
      if (inner.number === ATTRIBUTE.tensor || inner.number === ATTRIBUTE.tensors) {
        scanTensor(bytes, inner.bytes, found);
      } else if (inner.number === ATTRIBUTE.graph || inner.number === ATTRIBUTE.graphs) {
        scanGraph(bytes, inner.bytes, found);
      }
    }
  }
}

function scanSparse(bytes: Uint8Array, span: Span, found: Set<string>): void {
  for (const field of fields(bytes, span)) {
    if (field.number === SPARSE.values || field.number === SPARSE.indices) {
      scanTensor(bytes, field.bytes, found);
    }
  }
}

function scanTensor(bytes: Uint8Array, span: Span, found: Set<string>): void {
  for (const field of fields(bytes, span)) {
    if (field.number !== TENSOR_EXTERNAL_DATA) continue;
    let key = "", value = "";
    for (const entry of fields(bytes, field.bytes)) {
      const text = new TextDecoder().decode(bytes.subarray(entry.bytes[0], entry.bytes[1]));
      if (entry.number === 1) key = text;
      else if (entry.number === 2) value = text;
    }
    if (key === "location" && value) found.add(value);
  }
}
