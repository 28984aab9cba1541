/**
 * What the GPU check's infodiff halves share (tools/gpu_check.ts, tools/gpu_check_families.ts):
 * items per second of one batch size, and the report's header.
 *
 * @module
 */
import type { OnnxModel } from "../src/query/load-model.ts";
import type { Condition } from "../src/models/denoiser.ts";
import type { Device } from "../src/models/onnx/onnx-model.ts";
import { webgpuAdapter } from "../src/models/onnx/webgpu.ts";
import { Random } from "../src/numerics/random.ts";

/**
 * Items per second at one batch size: a warm-up call, then `calls` timed calls of `batch` items of
 * one condition at one log-SNR; an error (an allocation over the device's limits) is returned, not
 * thrown.
 */
export async function timeBatch(
  model: OnnxModel,
  batch: number,
  condition: Condition,
  logSnr: number,
  calls: number,
): Promise<Record<string, unknown>> {
  const d = model.shape[0] * model.shape[1] * model.shape[2];
  const request = {
    noisy: new Random(2).fillGaussian(new Float32Array(batch * d)),
    logSnr: new Float64Array(batch).fill(logSnr),
    conditions: Array(batch).fill(condition),
  };
  try {
    const warm = performance.now();
    await model.predictNoise(request);
    const firstCallSeconds = (performance.now() - warm) / 1000;
    const before = model.stats.unetCalls;
    const start = performance.now();
    for (let i = 0; i < calls; i++) await model.predictNoise(request);
    const seconds = (performance.now() - start) / 1000;
    return {
      batch,
      calls,
      firstCallSeconds,
      secondsPerCall: seconds / calls,
      itemsPerSecond: (calls * batch) / seconds,
      sessionRunsPerCall: (model.stats.unetCalls - before) / calls,
    };
  } catch (error) {
    return { batch, error: (error as Error).message.split("\n")[0] };
  }
}

/**
 * Times each batch size in turn; after a failed one, larger ones are not tried.
 */
export async function timeBatches(
  label: string,
  model: OnnxModel,
  batches: readonly number[],
  time: (batch: number) => Promise<Record<string, unknown>>,
): Promise<Record<string, unknown>[]> {
  const timings: Record<string, unknown>[] = [];
  for (const batch of batches) {
    const failed = timings.find((t) => "error" in t);
    timings.push(
      failed ? { batch, error: `not tried: batch ${failed.batch} failed` } : await time(batch),
    );
    console.error(`${label} on ${model.device}: ${JSON.stringify(timings.at(-1))}`);
  }
  return timings;
}

/** The report's header: the device, WebGPU's adapter, Deno's version and the date. */
export async function reportHeader(device: Device): Promise<Record<string, unknown>> {
  return {
    device,
    adapter: device === "webgpu" ? (await webgpuAdapter())?.description ?? null : null,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
    models: {},
  };
}
