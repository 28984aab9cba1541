/**
 * The ONNX Runtime backend: diffusers ONNX exports (Stable Diffusion 1.x/2.x, SDXL, SD 3/3.5,
 * FLUX.1) as denoisers, and the graph editing behind attention maps. Importing this module loads
 * onnxruntime-node; `loadModel` from the main module loads it only when called. Subpath export
 * `@infodiff/infodiff/onnx`.
 *
 * @example
 * ```ts
 * import { loadOnnxDenoiser } from "./mod.ts";
 * const denoiser = await loadOnnxDenoiser("fixtures/models/pixel-space", { device: "cpu" });
 * console.assert(denoiser.device === "cpu");
 * await denoiser.dispose();
 * ```
 *
 * @module
 */
export { type LoadModelOptions, loadOnnxDenoiser } from "./load-model.ts";
export type { PipelineOptions } from "./pipeline.ts";
export type { DownloadProgress, HubOptions } from "../hub/resolve.ts";
export type { HubEnvironment } from "../hub/cache.ts";
export {
  checkDevice,
  type Device,
  DEVICES,
  type EditedUnet,
  type OnnxCondition,
  type OnnxDenoiser,
  type OnnxModelStats,
} from "./onnx-model.ts";
export {
  addGraphOutputs,
  type AttentionGraph,
  type CrossAttentionLayer,
  crossAttentionLayers,
  type FusedQueryKey,
  type OutputSpaceLayer,
  readAttentionGraph,
  UNFUSED_EXPORT_HELP,
} from "./attention-graph.ts";
export { CUDA_INSTALL_HELP } from "./session.ts";
