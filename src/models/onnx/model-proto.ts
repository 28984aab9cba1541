/**
 * Decoding an ONNX model's protobuf (the graph readers: attention layers, in-graph VAE sampling,
 * CUDA-only operators) with one error for bytes that are not a model.
 *
 * @module
 */
import onnxProto from "npm:onnx-proto@8.0.1";
import { ModelLoadError } from "../../errors.ts";

const { onnx } = onnxProto;

/** A decoded ONNX ModelProto. */
export type ModelProto = ReturnType<typeof onnx.ModelProto.decode>;

/**
 * Decodes a serialized ModelProto.
 *
 * @throws {ModelLoadError} naming `source` when the bytes are not a readable model
 *
 * @example
 * ```ts
 * import { decodeModelProto } from "./model-proto.ts";
 * const path = "fixtures/models/attention-tiny/unet/model.onnx";
 * console.assert(decodeModelProto(Deno.readFileSync(path), path).graph !== undefined);
 * ```
 */
export function decodeModelProto(bytes: Uint8Array, source: string): ModelProto {
  try {
    return onnx.ModelProto.decode(bytes);
  } catch (error) {
    throw new ModelLoadError(`${source} is not a readable ONNX model; expected a ModelProto`, {
      cause: error,
    });
  }
}
