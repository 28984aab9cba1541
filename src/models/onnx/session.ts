/**
 * Creating onnxruntime-node sessions on the requested device, and reading their input/output
 * metadata (names, dtypes, shapes) instead of guessing it.
 *
 * @module
 */
import { existsSync } from "node:fs";
import { cudaOnlyOps } from "./cuda-only-ops.ts";
import { bfloat16Tensors } from "./graph-dtypes.ts";
import {
  createQuietly,
  explainWebGpuFailure,
  type WebGpuAdapter,
  webgpuAdapter,
} from "./webgpu.ts";
import { dirname, join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { InferenceSession } from "npm:onnxruntime-node@1.30.0";
import { InvalidArgumentError, ModelLoadError } from "../../errors.ts";
import { warn } from "../../warnings.ts";
import { hideFloat16ArrayFromOnnxRuntime } from "./float16.ts";

import { checkDevice, type Device } from "./onnx-model.ts";

/** The onnxruntime-node version the backend is pinned to (recorded in model identities). */
export const ONNXRUNTIME_VERSION = "1.30.0";

/** Session creation options. */
export interface SessionOptions {
  /** execution device (default `"auto"`) */
  readonly device?: Device;
  /** CPU intra-op threads (default: onnxruntime's choice) */
  readonly threads?: number;
  /**
   * the CUDA device (default 0, the first that CUDA_VISIBLE_DEVICES leaves visible); for
   * "cuda" and "auto" only: the WebGPU provider takes no device id and refuses one
   */
  readonly deviceId?: number;
}

/** Metadata of one tensor input or output, read from the session. */
export interface TensorInfo {
  /** the input/output name */
  readonly name: string;
  /** onnxruntime's tensor type, e.g. `"float32"`, `"float16"`, `"int64"` */
  readonly type: string;
  /** dimensions: numbers, or strings for symbolic dimensions; `[]` for a scalar */
  readonly shape: readonly (number | string)[];
}

/**
 * How to get the CUDA provider libraries; part of every CUDA failure message.
 *
 * @example
 * ```ts
 * import { CUDA_INSTALL_HELP } from "./session.ts";
 * console.assert(CUDA_INSTALL_HELP.includes("ONNXRUNTIME_NODE_INSTALL"));
 * ```
 */
export const CUDA_INSTALL_HELP: string =
  "onnxruntime-node ships only the CPU (and WebGPU) library; its install script downloads the CUDA " +
  "12 provider (NuGet Microsoft.ML.OnnxRuntime.Gpu.Linux 1.30.0: libonnxruntime_providers_cuda.so, " +
  "_shared.so, _tensorrt.so) into its bin/napi-v6/linux/x64/ folder. Deno skips npm install scripts " +
  "and ONNXRUNTIME_NODE_INSTALL=skip disables the download; the script's default on linux/x64 is " +
  "the CUDA 12 download (ONNXRUNTIME_NODE_INSTALL knows only skip/true/1/ON). To install it " +
  "(network access to api.nuget.org needed), with ONNXRUNTIME_NODE_INSTALL unset: in a Deno " +
  'project with nodeModulesDir "auto", `deno install --allow-scripts=npm:onnxruntime-node`, or ' +
  "`node script/install.js` inside node_modules/.deno/onnxruntime-node@1.30.0/node_modules/" +
  "onnxruntime-node; without nodeModulesDir the package is in Deno's cache " +
  "($DENO_DIR/npm/registry.npmjs.org/onnxruntime-node/1.30.0, see `deno info`): run " +
  "`node script/install.js` there; with npm, `npm rebuild onnxruntime-node`. The provider also " +
  "needs an NVIDIA driver, the CUDA 12 runtime and cuDNN 9 on the library path (LD_LIBRARY_PATH). " +
  'Use device: "webgpu" (a Vulkan driver) or "cpu" to run without CUDA.';

/** The sessions' device after "auto" resolution, shared by all sessions of one model. */
export interface SessionFactory {
  /** the device the sessions really use */
  readonly device: Exclude<Device, "auto">;
  /** the WebGPU adapter the sessions run on (undefined on other devices, or when unknown) */
  adapter(): Promise<WebGpuAdapter | undefined>;
  /** creates a session for an .onnx file (external weights next to it are resolved by path) */
  create(path: string): Promise<InferenceSession>;
  /**
   * creates a session from an edited in-memory copy of the .onnx file at `path`; its external
   * weights are read from `path`'s folder, as for the file itself (nothing is written to disk)
   */
  createFromBytes(bytes: Uint8Array, path: string): Promise<InferenceSession>;
}

/**
 * Makes a factory that creates sessions on the requested device. With `"auto"` the first session
 * decides: CUDA if it can be created, else CPU with one `console.warn` line.
 *
 * @example
 * ```ts
 * import { sessionFactory } from "./session.ts";
 * const factory = sessionFactory({ device: "cpu", threads: 1 });
 * console.assert(factory.device === "cpu");
 * ```
 */
export function sessionFactory(options: SessionOptions = {}): SessionFactory {
  const requested = options.device ?? "auto";
  checkDevice(requested);
  const threads = options.threads;
  if (threads !== undefined && !(Number.isInteger(threads) && threads > 0)) {
    throw new InvalidArgumentError(`threads must be a positive integer, got ${threads}`);
  }
  const deviceId = options.deviceId ?? 0;
  if (!Number.isInteger(deviceId) || deviceId < 0) {
    throw new InvalidArgumentError(`deviceId must be an integer ≥ 0, got ${options.deviceId}`);
  }
  if (options.deviceId !== undefined && (requested === "cpu" || requested === "webgpu")) {
    throw new InvalidArgumentError(
      `deviceId selects a CUDA device; device "${requested}" takes none (onnxruntime's WebGPU ` +
        `provider refuses a device id)`,
    );
  }
  const placement = { threads, deviceId };
  hideFloat16ArrayFromOnnxRuntime();
  let device: Exclude<Device, "auto"> = requested === "auto" ? "cuda" : requested;
  let decided = requested !== "auto";
  let adapter: WebGpuAdapter | undefined;
  // "auto" without CUDA: a hardware WebGPU adapter, else the CPU — never a software adapter
  const fallBack = async (reason: string) => {
    const found = await webgpuAdapter();
    if (found && !found.fallback) {
      device = "webgpu";
      adapter = found;
      warn(
        `infodiff: CUDA is not available (${reason}); running on WebGPU (${found.description}). ` +
          `Pass device: "webgpu" (--device webgpu) to silence this.`,
      );
      return;
    }
    device = "cpu";
    const webgpu = found
      ? `WebGPU has only a software adapter (${found.description})`
      : "WebGPU has no adapter";
    warn(
      `infodiff: CUDA is not available (${reason}); ${webgpu}; running on the CPU. ` +
        `Pass device: "cpu" (--device cpu) to silence this, or see docs/models.md ("GPUs: WebGPU ` +
        `and CUDA") to install the CUDA provider.`,
    );
  };
  return {
    get device() {
      return device;
    },
    async adapter() {
      if (device !== "webgpu") return undefined;
      adapter ??= await webgpuAdapter();
      return adapter;
    },
    async create(path: string): Promise<InferenceSession> {
      if (device === "cuda") {
        // without the provider library onnxruntime would also print a native error line: check first
        const missing = missingCudaProvider();
        if (missing && !decided) {
          decided = true;
          await fallBack(`${missing} is not installed`);
        } else if (missing) {
          throw new ModelLoadError(
            `could not create a CUDA session for ${path}: ${missing} is not installed. ${CUDA_INSTALL_HELP}`,
          );
        }
      }
      if (!decided) {
        decided = true;
        try {
          return await createOn("cuda", path, placement, true);
        } catch (error) {
          await fallBack(firstLine(error));
        }
      }
      return await createOn(device, path, placement, false);
    },
    async createFromBytes(bytes: Uint8Array, path: string): Promise<InferenceSession> {
      return await createOn(device, path, placement, false, bytes);
    },
  };
}

/**
 * The CUDA provider library onnxruntime-node would load, when it can be located and is absent;
 * undefined when it is present or the package cannot be located (then creating the session tells).
 */
function missingCudaProvider(): string | undefined {
  if (Deno.build.os !== "linux") return undefined;
  let bindingDir: string;
  try {
    const entry = import.meta.resolve("npm:onnxruntime-node@1.30.0");
    if (!entry.startsWith("file:")) return undefined;
    const arch = Deno.build.arch === "x86_64" ? "x64" : "arm64";
    bindingDir = fromFileUrl(new URL(`../bin/napi-v6/linux/${arch}/`, entry));
    if (!existsSync(join(bindingDir, "onnxruntime_binding.node"))) return undefined;
  } catch {
    return undefined;
  }
  const provider = join(bindingDir, "libonnxruntime_providers_cuda.so");
  return existsSync(provider) ? undefined : provider;
}

async function createOn(
  device: Exclude<Device, "auto">,
  path: string,
  { threads, deviceId }: { readonly threads?: number; readonly deviceId: number },
  quiet: boolean,
  bytes?: Uint8Array,
): Promise<InferenceSession> {
  const options: InferenceSession.SessionOptions = {
    executionProviders: device === "cuda"
      ? [{ name: "cuda", deviceId }]
      : device === "webgpu"
      ? ["webgpu"]
      : ["cpu"],
    graphOptimizationLevel: "all",
    // 3 = errors only; 4 = fatal only while probing CUDA for "auto"
    logSeverityLevel: quiet ? 4 : 3,
    ...(threads ? { intraOpNumThreads: threads, interOpNumThreads: 1 } : {}),
    extra: {
      session: {
        // the thread pool spins between parallel regions of a run, not after it: the work around
        // session.run (noising, the flow conversion, feeding, reductions) runs on the same cores,
        // and after-run spinning made it 1.7–1.9× as long at SD 3's and FLUX.1's sizes on 2 cores
        // while runs took as long either way (docs/performance.md)
        force_spinning_stop: "1",
        // a model given as bytes reads its external weights from this folder (relative locations)
        ...(bytes ? { model_external_initializers_file_folder_path: dirname(path) } : {}),
      },
    },
  };
  const create = () =>
    bytes ? InferenceSession.create(bytes, options) : InferenceSession.create(path, options);
  let session: InferenceSession;
  try {
    // Dawn and the Vulkan drivers print to the native stderr; lines that report no error are dropped
    session = await (device === "webgpu" ? createQuietly(create) : create());
  } catch (error) {
    const bf16 = await graphBfloat16(path, bytes);
    if (bf16.length > 0) {
      throw new ModelLoadError(
        `${path} is a bfloat16 graph (bfloat16 tensors: ${bf16.join(", ")}), which onnxruntime ` +
          `could not load on the ${device} (${firstLine(error)}): onnxruntime-node exchanges no ` +
          `bfloat16 tensors, and the CPU and WebGPU providers have no bfloat16 kernel for most ` +
          `operators. ${BFLOAT16_HELP}`,
        { cause: error },
      );
    }
    if (device === "cuda") {
      throw new ModelLoadError(
        `could not create a CUDA session for ${path}: ${firstLine(error)}. ${CUDA_INSTALL_HELP}`,
        { cause: error },
      );
    }
    const cudaOnly = await graphCudaOnlyOps(path, bytes);
    if (cudaOnly.length > 0) {
      throw new ModelLoadError(
        `${path} is optimized for CUDA: it uses ${cudaOnly.join(", ")} (com.microsoft), which ` +
          `onnxruntime implements only on CUDA, so it cannot run on the ${device}. Load it with ` +
          `device: "cuda" (--device cuda), or use a portable export (optimum-cli export onnx, see ` +
          `docs/models.md, "Getting a model")`,
        { cause: error },
      );
    }
    if (device === "webgpu") {
      throw new ModelLoadError(await explainWebGpuFailure(path, firstLine(error)), {
        cause: error,
      });
    }
    throw new ModelLoadError(`could not load ONNX model ${path}: ${firstLine(error)}`, {
      cause: error,
    });
  }
  return session;
}

/** The bfloat16 tensors of the graph a session failed on (read again only on failure). */
async function graphBfloat16(path: string, bytes?: Uint8Array): Promise<string[]> {
  try {
    return bfloat16Tensors(bytes ?? await Deno.readFile(path));
  } catch {
    return [];
  }
}

/** What to do with a bfloat16 export; part of every bfloat16 refusal. */
const BFLOAT16_HELP =
  "Export the model in float32 (optimum-cli export onnx's default) or float16 (--dtype fp16) " +
  'instead, see docs/models.md, "Getting a model"';

/** The CUDA-only operators of the graph a session failed on (read again only on failure). */
async function graphCudaOnlyOps(path: string, bytes?: Uint8Array): Promise<string[]> {
  try {
    return cudaOnlyOps(bytes ?? await Deno.readFile(path));
  } catch {
    return [];
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.split("\n")[0].trim();
}

/**
 * The tensor inputs of a session, by name, from its metadata.
 *
 * @example
 * ```ts ignore
 * import { inputInfo } from "./session.ts";
 * const info = inputInfo(session); // Map { "input_ids" => { type: "int64", shape: ["batch", 77] } }
 * ```
 */
export function inputInfo(session: InferenceSession): Map<string, TensorInfo> {
  return tensorInfo(session.inputMetadata, session.inputNames, "input");
}

/**
 * The tensor outputs of a session, by name, from its metadata.
 *
 * @example
 * ```ts ignore
 * import { outputInfo } from "./session.ts";
 * const info = outputInfo(session); // Map { "out_sample" => { type: "float32", shape: [...] } }
 * ```
 */
export function outputInfo(session: InferenceSession): Map<string, TensorInfo> {
  return tensorInfo(session.outputMetadata, session.outputNames, "output");
}

function tensorInfo(
  metadata: readonly InferenceSession.ValueMetadata[],
  names: readonly string[],
  kind: string,
): Map<string, TensorInfo> {
  const result = new Map<string, TensorInfo>();
  names.forEach((name, i) => {
    const meta = metadata[i];
    if (!meta || !meta.isTensor) {
      throw new ModelLoadError(`${kind} "${name}" is not a tensor; expected tensor ${kind}s only`);
    }
    result.set(name, { name, type: meta.type, shape: [...meta.shape] });
  });
  return result;
}

/**
 * Describes a session's inputs and outputs for error messages: `name: type[dims]`.
 *
 * @example
 * ```ts
 * import { describeTensors } from "./session.ts";
 * const text = describeTensors(new Map([["t", { name: "t", type: "int64", shape: ["batch"] }]]));
 * console.assert(text === "t: int64[batch]");
 * ```
 */
export function describeTensors(info: Map<string, TensorInfo>): string {
  return [...info.values()].map((t) => `${t.name}: ${t.type}[${t.shape.join(",")}]`).join(", ");
}
