/**
 * Exports "optimized for CUDA" (ONNX Runtime's and Olive's Stable Diffusion optimizers) fuse
 * layers into com.microsoft operators that only the CUDA provider implements; on the CPU their
 * sessions fail with a bare "Could not find an implementation" line. This names them.
 *
 * @module
 */
import onnxProto from "npm:onnx-proto@8.0.1";

const { onnx } = onnxProto;

/** com.microsoft operators with CUDA (and ROCm/DirectML) kernels only, as the SD optimizers emit. */
export const CUDA_ONLY_OPS: ReadonlySet<string> = new Set([
  "GroupNorm",
  "SkipGroupNorm",
  "NhwcConv",
  "BiasSplitGelu",
  "BiasAdd",
  "PackedAttention",
  "PackedMultiHeadAttention",
  "DecoderMaskedMultiHeadAttention",
]);

/**
 * The CUDA-only operators a graph uses (distinct, sorted); empty for a portable graph or bytes
 * that are not a readable model.
 *
 * @example
 * ```ts
 * import { cudaOnlyOps } from "./cuda-only-ops.ts";
 * const bytes = Deno.readFileSync("fixtures/models/sd-cuda-only/unet/model.onnx");
 * console.assert(cudaOnlyOps(bytes).join() === "GroupNorm");
 * console.assert(cudaOnlyOps(Deno.readFileSync("fixtures/models/sd-vpred/unet/model.onnx")).length === 0);
 * ```
 */
export function cudaOnlyOps(bytes: Uint8Array): string[] {
  let nodes;
  try {
    nodes = onnx.ModelProto.decode(bytes).graph?.node ?? [];
  } catch {
    return []; // not a model: the session's own error says so
  }
  const found = nodes
    .filter((n) => n.domain === "com.microsoft" && CUDA_ONLY_OPS.has(n.opType ?? ""))
    .map((n) => n.opType!);
  return [...new Set(found)].sort();
}
