/**
 * bfloat16 exports (`optimum-cli export onnx --dtype bf16`, the released dtype of FLUX.1 and SD 3.5):
 * onnxruntime's CPU and WebGPU providers have no bfloat16 kernels for most operators, and
 * onnxruntime-node exchanges no bfloat16 tensors, so their sessions fail with a bare "Could not
 * find an implementation" or "Unsupported data type: 16" line. This names the bfloat16 tensors a
 * graph has, read only when a session has failed.
 *
 * @module
 */
import onnxProto from "npm:onnx-proto@8.0.1";

const { onnx } = onnxProto;
const BFLOAT16 = onnx.TensorProto.DataType.BFLOAT16;

/**
 * The graph's inputs, outputs and initializers of type bfloat16 (their names, inputs and outputs
 * first, at most `limit`); empty for a graph without any, or bytes that are not a readable model.
 *
 * @example
 * ```ts
 * import { bfloat16Tensors } from "./graph-dtypes.ts";
 * console.assert(bfloat16Tensors(Deno.readFileSync("fixtures/models/sd-vpred/unet/model.onnx")).length === 0);
 * ```
 */
export function bfloat16Tensors(bytes: Uint8Array, limit = 8): string[] {
  let graph;
  try {
    graph = onnx.ModelProto.decode(bytes).graph;
  } catch {
    return []; // not a model: the session's own error says so
  }
  if (!graph) return [];
  const values = [...(graph.input ?? []), ...(graph.output ?? [])]
    .filter((v) => v.type?.tensorType?.elemType === BFLOAT16).map((v) => v.name ?? "");
  const weights = (graph.initializer ?? []).filter((t) => t.dataType === BFLOAT16)
    .map((t) => t.name ?? "");
  return [...values, ...weights].slice(0, limit);
}
