/**
 * What the GPU check's infodiff halves share (tools/gpu_check.ts, tools/gpu_check_families.ts):
 * their command line, the loop that loads each model, compares and times it, and the report.
 *
 * @module
 */
import { parseArgs } from "node:util";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";
import { type Condition, shapeSize } from "../src/models/denoiser.ts";
import type { Device } from "../src/models/onnx/onnx-model.ts";
import { webgpuAdapter } from "../src/models/onnx/webgpu.ts";
import { Random } from "../src/numerics/random.ts";

/** A half's command line: `--work DIR [--device D] [--batches …] [--calls N] LABEL=FOLDER…`. */
export interface CheckArgs {
  readonly work: string;
  readonly device: Device;
  readonly batches: readonly number[];
  readonly calls: number;
  /** LABEL=FOLDER of each model */
  readonly specs: readonly string[];
  /** every option's value, the half's own ones too */
  readonly values: Record<string, string | undefined>;
}

/**
 * Parses a half's command line; exits with its usage when `--work` or the models are missing.
 * `extra` are the half's own string options with their defaults.
 */
export function checkArgs(
  script: string,
  defaultBatches: string,
  extra: Record<string, string> = {},
): CheckArgs {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      work: { type: "string" },
      device: { type: "string", default: "webgpu" },
      batches: { type: "string", default: defaultBatches },
      calls: { type: "string", default: "2" },
      ...Object.fromEntries(
        Object.entries(extra).map(([name, value]) => [name, { type: "string", default: value }]),
      ),
    },
  });
  if (!values.work || positionals.length === 0) {
    console.error(`usage: ${script} --work DIR [--device D] LABEL=FOLDER…`);
    Deno.exit(2);
  }
  return {
    work: values.work,
    device: values.device as Device,
    batches: values.batches!.split(",").map(Number),
    calls: Number(values.calls),
    specs: positionals,
    values: values as Record<string, string | undefined>,
  };
}

/** What a half's comparison of one model leaves for the timings and the report. */
export interface Compared {
  /** the condition and log-SNR every timed item takes */
  readonly condition: Condition;
  readonly logSnr: number;
  /** what the report records of the model besides its device and timings */
  readonly record: Record<string, unknown>;
}

/**
 * Loads each model of `args.specs` in turn (`load`), runs the half's comparison (`compare`), times
 * every batch size, and writes the report (the device, WebGPU's adapter, Deno's version, the date,
 * and per model its record, session seconds and timings) into `args.work/report` and to stdout.
 */
export async function checkModels(
  args: CheckArgs,
  report: string,
  load: (folder: string) => Promise<OnnxModel>,
  compare: (label: string, folder: string, model: OnnxModel) => Promise<Compared>,
): Promise<void> {
  const models: Record<string, unknown> = {};
  const header = {
    device: args.device,
    adapter: args.device === "webgpu" ? (await webgpuAdapter())?.description ?? null : null,
    deno: Deno.version.deno,
    date: new Date().toISOString(),
    models,
  };
  for (const spec of args.specs) {
    const [label, folder] = spec.split("=");
    const started = performance.now();
    const model = await load(folder);
    const sessionSeconds = (performance.now() - started) / 1000;
    try {
      const { condition, logSnr, record } = await compare(label, folder, model);
      const timings = await timeBatches(
        label,
        model,
        args.batches,
        (batch) => timeBatch(model, batch, condition, logSnr, args.calls),
      );
      models[label] = { ...record, device: model.device, sessionSeconds, timings };
    } finally {
      await model.dispose();
    }
  }
  await Deno.writeTextFile(`${args.work}/${report}`, JSON.stringify(header, null, 1));
  console.log(JSON.stringify(header));
}

/** Loads a model for a half: `loadModel` with the batch its largest timing needs. */
export function loadForCheck(args: CheckArgs, extra: { resolution?: number } = {}) {
  return (folder: string) =>
    loadModel(folder, { device: args.device, batchSize: Math.max(...args.batches), ...extra });
}

/** A Float32Array's bytes, for writing raw little-endian arrays. */
export function bytesOf(a: Float32Array | Int32Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/**
 * Items per second at one batch size: a warm-up call, then `calls` timed calls of `batch` items of
 * one condition at one log-SNR; an error (an allocation over the device's limits) is returned, not
 * thrown.
 */
async function timeBatch(
  model: OnnxModel,
  batch: number,
  condition: Condition,
  logSnr: number,
  calls: number,
): Promise<Record<string, unknown>> {
  const d = shapeSize(model.shape);
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

/** Times each batch size in turn; after a failed one, larger ones are not tried. */
async function timeBatches(
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
