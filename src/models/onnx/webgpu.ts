/**
 * WebGPU as a device: onnxruntime-node's Linux library has the WebGPU provider (Dawn, statically
 * linked) built in; it needs a Vulkan loader (`libvulkan.so.1`) and a Vulkan driver Dawn accepts —
 * the GPU vendor's, or Mesa's software lavapipe ≥ 25 on a CPU (REFERENCE §13). This module finds
 * the adapter (Deno's own WebGPU tells a hardware adapter from a software fallback) and, when a
 * session cannot be made, says which of those is missing, with Dawn's own words.
 *
 * @module
 */

/** A WebGPU adapter as Deno reports it. */
export interface WebGpuAdapter {
  /** the driver's description, e.g. "NVIDIA H200" or "llvmpipe (LLVM 15.0.6, 256 bits)" */
  readonly description: string;
  /** true for a software adapter (lavapipe/llvmpipe, SwiftShader) */
  readonly fallback: boolean;
}

interface GpuLike {
  requestAdapter(): Promise<
    { info?: { description?: string; device?: string; isFallbackAdapter?: boolean } } | null
  >;
}

/**
 * The adapter WebGPU would use, or undefined when there is none (no loader, no driver, or a Deno
 * without WebGPU).
 *
 * @example
 * ```ts
 * import { webgpuAdapter } from "./webgpu.ts";
 * const adapter = await webgpuAdapter();
 * console.assert(adapter === undefined || typeof adapter.description === "string");
 * ```
 */
export async function webgpuAdapter(): Promise<WebGpuAdapter | undefined> {
  const gpu = (globalThis.navigator as unknown as { gpu?: GpuLike } | undefined)?.gpu;
  if (!gpu) return undefined;
  try {
    const adapter = await gpu.requestAdapter();
    if (!adapter) return undefined;
    const info = adapter.info ?? {};
    const description = info.description || info.device || "unknown adapter";
    const fallback = info.isFallbackAdapter === true ||
      /llvmpipe|lavapipe|swiftshader|software/i.test(description);
    return { description, fallback };
  } catch {
    return undefined;
  }
}

/** Whether the Vulkan loader can be opened (FFI permission needed; undefined when not allowed). */
function vulkanLoaderPresent(): boolean | undefined {
  try {
    const library = Deno.dlopen("libvulkan.so.1", {});
    library.close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
      return undefined;
    }
    return false;
  }
}

/**
 * What Dawn and the Vulkan loader print when a WebGPU session is made for `path` in a child
 * process (they write to the native stderr, which this process cannot read); empty when child
 * processes are not allowed.
 */
async function dawnLines(path: string): Promise<string[]> {
  if (Deno.permissions.querySync?.({ name: "run" }).state !== "granted") return [];
  const script = `import { InferenceSession } from "npm:onnxruntime-node@1.30.0";
try { await InferenceSession.create(${
    JSON.stringify(path)
  }, { executionProviders: ["webgpu"] }); } catch {}`;
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "--no-config", script],
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    });
    const { stderr } = await child.output();
    const lines = new TextDecoder().decode(stderr).split("\n").map((l) => l.trim());
    const relevant = lines.filter((l) =>
      /vulkan|vkCreate|driver|adapter|Dawn|dynamic ?indexing|required/i.test(l) &&
      !/^at |Lifecycle|nodeModulesDir|npm:/.test(l)
    );
    return [...new Set(relevant)].slice(0, 4);
  } catch {
    return [];
  }
}

/**
 * Why a WebGPU session could not be made, and how to fix it: no Vulkan loader, no Vulkan driver,
 * or a driver Dawn rejects — with Dawn's own lines when child processes are allowed.
 *
 * @param path the model whose session failed
 * @param reason onnxruntime's message
 *
 * @example
 * ```ts ignore
 * import { explainWebGpuFailure } from "./webgpu.ts";
 * console.log(await explainWebGpuFailure("unet/model.onnx", "Failed to get a WebGPU adapter"));
 * ```
 */
export async function explainWebGpuFailure(path: string, reason: string): Promise<string> {
  const fix = 'install it, or run on the CPU (device: "cpu")';
  const loader = vulkanLoaderPresent();
  const dawn = loader === false ? [] : await dawnLines(path);
  const said = dawn.length > 0
    ? ` Dawn and the Vulkan loader said: ${dawn.map((l) => `"${l}"`).join("; ")}.`
    : loader === undefined
    ? ""
    : " (Allow child processes, --allow-run, to see Dawn's own message.)";
  let cause: string;
  if (loader === false) {
    cause = `there is no Vulkan loader (libvulkan.so.1 cannot be loaded; Debian/Ubuntu: the ` +
      `libvulkan1 package) — ${fix}`;
  } else if (
    dawn.some((l) => /found no drivers|INCOMPATIBLE_DRIVER|Failed to open JSON/i.test(l))
  ) {
    cause = `the Vulkan loader found no driver: install the GPU's Vulkan driver (NVIDIA's driver ` +
      `ships nvidia_icd.json), or on a machine without a GPU Mesa's lavapipe ≥ 25 ` +
      `(tools/setup_lavapipe.sh), and point VK_DRIVER_FILES at the driver's ICD .json`;
  } else if (dawn.some((l) => /dynamic ?indexing|required|not supported/i.test(l))) {
    cause = `Dawn rejects this Vulkan driver: it lacks features Dawn requires (Debian bookworm's ` +
      `Mesa 22 lavapipe is one such; Mesa 25 works) — use a newer driver`;
  } else {
    const adapter = await webgpuAdapter();
    cause = adapter
      ? `a Vulkan adapter exists (${adapter.description}) but onnxruntime's WebGPU provider ` +
        `could not use it`
      : `no WebGPU adapter could be made (a missing or rejected Vulkan driver)`;
  }
  return `could not create a WebGPU session for ${path}: ${cause}. onnxruntime said: ${reason}.${said}`;
}
