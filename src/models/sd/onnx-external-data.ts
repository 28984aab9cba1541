/**
 * Which external-data files an ONNX graph references, read straight from its protobuf bytes (no
 * ONNX runtime, no schema library): what a download must fetch beside each `model.onnx`.
 *
 * @module
 */
import { ModelLoadError } from "../../errors.ts";

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
    for (const field of fields(bytes, 0, bytes.length)) {
      if (field.number === MODEL_GRAPH && field.bytes) scanGraph(bytes, field.bytes, found);
    }
  } catch (error) {
    throw new ModelLoadError(`${source} is not a readable ONNX model; expected a ModelProto`, {
      cause: error,
    });
  }
  return [...found];
}

type Span = readonly [start: number, end: number];

function scanGraph(bytes: Uint8Array, [start, end]: Span, found: Set<string>): void {
  for (const field of fields(bytes, start, end)) {
    if (!field.bytes) continue;
    if (field.number === GRAPH.initializer) scanTensor(bytes, field.bytes, found);
    else if (field.number === GRAPH.sparseInitializer) scanSparse(bytes, field.bytes, found);
    else if (field.number === GRAPH.node) scanNode(bytes, field.bytes, found);
  }
}

function scanNode(bytes: Uint8Array, [start, end]: Span, found: Set<string>): void {
  for (const field of fields(bytes, start, end)) {
    if (field.number !== NODE_ATTRIBUTE || !field.bytes) continue;
    for (const inner of fields(bytes, field.bytes[0], field.bytes[1])) {
      if (!inner.bytes) continue;
      if (inner.number === ATTRIBUTE.tensor || inner.number === ATTRIBUTE.tensors) {
        scanTensor(bytes, inner.bytes, found);
      } else if (inner.number === ATTRIBUTE.graph || inner.number === ATTRIBUTE.graphs) {
        scanGraph(bytes, inner.bytes, found);
      }
    }
  }
}

function scanSparse(bytes: Uint8Array, [start, end]: Span, found: Set<string>): void {
  for (const field of fields(bytes, start, end)) {
    if ((field.number === SPARSE.values || field.number === SPARSE.indices) && field.bytes) {
      scanTensor(bytes, field.bytes, found);
    }
  }
}

function scanTensor(bytes: Uint8Array, [start, end]: Span, found: Set<string>): void {
  for (const field of fields(bytes, start, end)) {
    if (field.number !== TENSOR_EXTERNAL_DATA || !field.bytes) continue;
    let key = "", value = "";
    for (const entry of fields(bytes, field.bytes[0], field.bytes[1])) {
      if (!entry.bytes) continue;
      const text = new TextDecoder().decode(bytes.subarray(entry.bytes[0], entry.bytes[1]));
      if (entry.number === 1) key = text;
      else if (entry.number === 2) value = text;
    }
    if (key === "location" && value) found.add(value);
  }
}

interface Field {
  readonly number: number;
  /** the span of a length-delimited field's payload (absent for other wire types) */
  readonly bytes?: Span;
}

/** The fields of one protobuf message in `bytes[start, end)`. */
function* fields(bytes: Uint8Array, start: number, end: number): Generator<Field> {
  let at = start;
  const varint = (): number => {
    let value = 0, scale = 1;
    for (;;) {
      if (at >= end) throw new ModelLoadError("truncated varint");
      const byte = bytes[at++];
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
      if (scale > 2 ** 63) throw new ModelLoadError("varint too long");
    }
  };
  while (at < end) {
    const key = varint();
    const number = Math.floor(key / 8), wire = key % 8;
    if (wire === 0) varint();
    else if (wire === 1) at += 8;
    else if (wire === 5) at += 4;
    else if (wire === 2) {
      const length = varint();
      if (at + length > end) throw new ModelLoadError("field runs past its message");
      yield { number, bytes: [at, at + length] };
      at += length;
      continue;
    } else throw new ModelLoadError(`unsupported wire type ${wire}`);
    if (at > end) throw new ModelLoadError("field runs past its message");
    yield { number };
  }
}
