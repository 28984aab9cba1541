// Helpers for the UNet batch-splitting tests (CPU and WebGPU).
import assert from "node:assert/strict";
import type { InferenceSession } from "onnxruntime-node";
import type { OnnxUnet } from "../src/models/onnx/unet.ts";
import { Random } from "../src/numerics/random.ts";

/** A session that fails like Dawn for batches above `limit`, with every run's batch recorded. */
export function limitedSession(session: InferenceSession, limit: number) {
  const batches: number[] = [];
  const wrapped = new Proxy(session, {
    get(target, property) {
      if (property === "run") {
        return (feeds: Record<string, { dims: readonly number[] }>, ...rest: unknown[]) => {
          const batch = Object.values(feeds).find((t) => t.dims.length === 4)!.dims[0];
          batches.push(batch);
          if (batch > limit) {
            return Promise.reject(
              new Error("Too many storage buffers in shader. Current: 22, Max is 16"),
            );
          }
          return (target.run as (...a: unknown[]) => Promise<unknown>).call(target, feeds, ...rest);
        };
      }
      const value = Reflect.get(target, property, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  return { session: wrapped as InferenceSession, batches };
}

/** A UNet request of `n` items for the sd-vpred fixture (4×8×8 latents). */
export function unetRequest(unet: OnnxUnet, n: number, seed: number) {
  const random = new Random(seed);
  const hidden = unet.hiddenInput.shape[2] as number;
  return {
    noisy: random.fillGaussian(new Float32Array(n * 256)),
    timesteps: Int32Array.from({ length: n }, (_, i) => 100 * i + 7),
    hiddenStates: Array.from(
      { length: n },
      () => random.fillGaussian(new Float32Array(77 * hidden)),
    ),
    contextLength: 77,
  };
}

/** Items evaluated in calls of another size agree to float32 rounding (the conformance bound). */
export function assertClose(actual: Float32Array, expected: Float32Array, tolerance = 1e-5): void {
  assert.equal(actual.length, expected.length);
  let worst = 0;
  for (let j = 0; j < actual.length; j++) {
    worst = Math.max(worst, Math.abs(actual[j] - expected[j]));
  }
  assert.ok(worst <= tolerance, `max |difference| ${worst} > ${tolerance}`);
}
