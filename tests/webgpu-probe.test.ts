// What a CLI run prints to stderr about devices. The graphics libraries write to the native stderr,
// past Deno: on a headless machine libwayland's "error: XDG_RUNTIME_DIR is invalid or not set in the
// environment." (twice per run, from the WebGPU probe of device "auto"), Dawn's notes on limits it
// lowers, and, when asked for, the Vulkan loader's and Mesa's EGL debug lines. Those debug lines
// stand in for the XDG one here: this machine's libraries print them during the same probe.
import assert from "node:assert/strict";

/** Debug output of the Vulkan loader and Mesa's EGL, on a machine without a display. */
const NOISY: Record<string, string> = { VK_LOADER_DEBUG: "all", EGL_LOG_LEVEL: "debug" };

function environment(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { ...Deno.env.toObject(), ...extra, NO_COLOR: "1" };
  delete env.XDG_RUNTIME_DIR;
  delete env.WAYLAND_DISPLAY;
  delete env.DISPLAY;
  return env;
}

async function stderrOf(args: string[], extra: Record<string, string>) {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args,
    env: environment(extra),
    clearEnv: true,
    stdout: "null",
    stderr: "piped",
  }).output();
  return { code, lines: new TextDecoder().decode(stderr).split("\n").filter((l) => l.trim()) };
}

/** `infodiff total` on shapes-tiny, as the deno.json `cli` task runs it. */
const cli = (device: string, extra: Record<string, string>) =>
  stderrOf([
    "run",
    "--allow-read",
    "--allow-write",
    "--allow-env",
    "--allow-ffi",
    "--allow-sys",
    "src/cli/main.ts",
    "total",
    "--model",
    "fixtures/models/shapes-tiny",
    "--image",
    "fixtures/images/shapes-scene.png",
    "--prompt",
    "a red circle",
    "--samples",
    "2",
    "--device",
    device,
    "--quiet",
  ], extra);

// The precondition that lets the first test fail: seeking an adapter here prints something
const bare = await stderrOf(
  ["eval", "--no-config", "await navigator.gpu?.requestAdapter();"],
  NOISY,
);
const silent = bare.lines.length === 0;
if (silent) {
  console.log(
    "webgpu probe: skipped — no graphics library here prints while an adapter is sought " +
      "(neither the Vulkan loader nor Mesa's EGL is installed)",
  );
}

Deno.test({
  name:
    "webgpu probe: a CLI run on device auto prints one line, saying what WebGPU found, and nothing the graphics libraries printed",
  ignore: silent,
  fn: async () => {
    const { code, lines } = await cli("auto", NOISY);
    assert.equal(code, 0, lines.join("\n"));
    // with the CUDA provider installed, auto takes CUDA without a word (never here: CI skips it)
    assert.ok(
      lines.length <= 1,
      `${lines.length} lines on stderr:\n${lines.slice(0, 8).join("\n")}`,
    );
    if (lines.length === 1) {
      assert.match(
        lines[0],
        /^infodiff: CUDA is not available \(.+\); (WebGPU has (only a software adapter \(.+\)|no adapter); running on the CPU|running on WebGPU \(.+\))\./,
      );
    }
  },
});

// Dawn's notes, on an adapter where a WebGPU session can be made (CI: Mesa's lavapipe 25)
const webgpu = await cli("webgpu", { VK_LOADER_DEBUG: "error,warn,info" });
const noSession = webgpu.code !== 0;
if (noSession) console.log("webgpu session: skipped — no WebGPU session can be made here");

Deno.test({
  name:
    "webgpu session: lines that report no error are dropped (Dawn's lowered limits), the drivers' others are passed on",
  ignore: noSession,
  fn: () => {
    const text = webgpu.lines.join("\n");
    assert.doesNotMatch(text, /artificially reduced|XDG_RUNTIME_DIR/);
    assert.match(text, /Vulkan Loader Version|INFO:/, "the loader's lines asked for are shown");
  },
});
