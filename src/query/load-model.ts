/**
 * `loadModel(dir)`: a Stable Diffusion ONNX export as a {@link Model}. The ONNX backend (and with
 * it onnxruntime's native library) is imported on the first call, not when the package is.
 *
 * @module
 */
import type { LoadModelOptions } from "../models/onnx/load-model.ts";
import type { OnnxDenoiser } from "../models/onnx/onnx-model.ts";
import { createModel, type Model } from "./model.ts";

/** A loaded Stable Diffusion ONNX export: the ONNX denoiser with the model verbs. */
export type OnnxModel = Model<OnnxDenoiser>;

/**
 * Loads a Stable Diffusion ONNX export folder (REFERENCE §5).
 *
 * @example
 * ```ts
 * import { loadModel } from "./load-model.ts";
 * const model = await loadModel("fixtures/models/sd-int32-int64t", { device: "cpu" });
 * console.assert(model.shape.join() === "4,8,8");
 * const total = await model.info(new Float32Array(4 * 8 * 8)).given("a red circle").samples(4).total();
 * console.assert(Number.isFinite(total.nats));
 * await model.dispose();
 * ```
 */
export async function loadModel(dir: string, options: LoadModelOptions = {}): Promise<OnnxModel> {
  const { loadOnnxDenoiser } = await import("../models/onnx/load-model.ts");
  return createModel(await loadOnnxDenoiser(dir, options));
}
