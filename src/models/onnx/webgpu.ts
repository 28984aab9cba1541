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

let probed: Promise<WebGpuAdapter | undefined> | undefined;

/**
 * The adapter WebGPU would use, or undefined when there is none (no loader, no driver, or a Deno
 * without WebGPU). Sought once per process, quietly: what the graphics libraries print to the
 * native stderr meanwhile (libwayland's "error: XDG_RUNTIME_DIR is invalid or not set" on a
 * headless machine, the Vulkan loader's debug lines) is not shown, since the adapter is the answer.
 *
 * @example
 * ```ts
 * import { webgpuAdapter } from "./webgpu.ts";
 * const adapter = await webgpuAdapter();
 * console.assert(adapter === undefined || typeof adapter.description === "string");
 * ```
 */
export function webgpuAdapter(): Promise<WebGpuAdapter | undefined> {
  probed ??= probeAdapter();
  return probed;
}

async function probeAdapter(): Promise<WebGpuAdapter | undefined> {
  const gpu = (globalThis.navigator as unknown as { gpu?: GpuLike } | undefined)?.gpu;
  if (!gpu) return undefined;
  try {
    const { result } = await withNativeStderr(() => gpu.requestAdapter());
    if (result.status === "rejected") return undefined;
    const adapter = result.value;
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

/**
 * Native stderr lines of Dawn and the drivers that report no error: libwayland's when a driver looks
 * for a display on a headless machine, and Dawn's notes on limits it lowers.
 */
const HARMLESS_LINES = [
  /XDG_RUNTIME_DIR is invalid or not set in the environment/,
  /artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit/,
];

/**
 * Creates a WebGPU session with the native stderr captured, and passes on what Dawn and the drivers
 * printed except the lines that report no error (HARMLESS_LINES).
 *
 * @example
 * ```ts
 * import { createQuietly } from "./webgpu.ts";
 * console.assert((await createQuietly(() => Promise.resolve(42))) === 42);
 * ```
 */
export async function createQuietly<T>(create: () => Promise<T>): Promise<T> {
  const { result, text } = await withNativeStderr(create);
  const kept = (text ?? "").split("\n").filter((line) =>
    line.trim() !== "" && !HARMLESS_LINES.some((harmless) => harmless.test(line))
  );
  if (kept.length > 0) Deno.stderr.writeSync(new TextEncoder().encode(kept.join("\n") + "\n"));
  if (result.status === "rejected") throw result.reason;
  return result.value;
}

const LIBC = {
  dup: { parameters: ["i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  mkstemp: { parameters: ["buffer"], result: "i32" },
  unlink: { parameters: ["buffer"], result: "i32" },
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
} as const;
type Libc = Deno.DynamicLibrary<typeof LIBC>["symbols"];
let libc: Libc | null | undefined;

/** The C library (Linux, macOS), or null where it cannot be opened (other systems, no --allow-ffi). */
function openLibc(): Libc | null {
  if (libc !== undefined) return libc;
  const name = Deno.build.os === "linux"
    ? "libc.so.6"
    : Deno.build.os === "darwin"
    ? "libSystem.B.dylib"
    : undefined;
  try {
    libc = name ? Deno.dlopen(name, LIBC).symbols : null;
  } catch {
    libc = null;
  }
  return libc;
}

let capturing: Promise<unknown> = Promise.resolve();

/**
 * Runs `fn` with file descriptor 2 pointed at an unlinked temporary file — Dawn, wgpu, the Vulkan
 * loader and drivers write there directly, past Deno — and returns its outcome and what was
 * written; `text` is undefined where the C library cannot be used (then nothing is captured).
 * Captures run one at a time; what JavaScript writes to stderr meanwhile is captured too.
 */
function withNativeStderr<T>(
  fn: () => Promise<T>,
): Promise<{ result: PromiseSettledResult<T>; text: string | undefined }> {
  const run = capturing.then(async () => {
    const c = openLibc();
    const file = c ? redirectStderr(c) : undefined;
    let result: PromiseSettledResult<T>;
    try {
      result = { status: "fulfilled", value: await fn() };
    } catch (reason) {
      result = { status: "rejected", reason };
    }
    return { result, text: c && file ? restoreStderr(c, file) : undefined };
  });
  capturing = run.catch(() => {});
  return run;
}

/** Points fd 2 at a new unlinked temporary file; undefined (nothing changed) when that fails. */
function redirectStderr(c: Libc): { fd: number; saved: number } | undefined {
  let folder = "/tmp";
  try {
    folder = Deno.env.get("TMPDIR") || folder;
  } catch { /* no --allow-env: /tmp */ }
  const template = new TextEncoder().encode(`${folder}/infodiff-stderr-XXXXXX\0`);
  const fd = c.mkstemp(template);
  if (fd < 0) return undefined;
  c.unlink(template);
  const saved = c.dup(2);
  if (saved < 0 || c.dup2(fd, 2) < 0) {
    if (saved >= 0) c.close(saved);
    c.close(fd);
    return undefined;
  }
  return { fd, saved };
}

/** Points fd 2 back where it was and returns what the file received. */
function restoreStderr(c: Libc, { fd, saved }: { fd: number; saved: number }): string {
  c.dup2(saved, 2);
  c.close(saved);
  c.lseek(fd, 0n, 0);
  const chunks: Uint8Array[] = [];
  const buffer = new Uint8Array(1 << 16);
  for (let n; (n = Number(c.read(fd, buffer, BigInt(buffer.length)))) > 0;) {
    chunks.push(buffer.slice(0, n));
  }
  c.close(fd);
  const decoder = new TextDecoder();
  return chunks.map((chunk) => decoder.decode(chunk, { stream: true })).join("") + decoder.decode();
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
