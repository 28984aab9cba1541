// tools/gpu-check.sh's preparation, which runs here (the GPU half needs a lent NVIDIA machine): the
// plan gathers this very Deno and the npm packages the check loads and cuts the bundle into parts
// that each travel with the tree in one device call, the run stage's infodiff half runs from the
// parts put together with an empty Deno cache and no fetching, a missing or damaged part is named,
// and the size check refuses a carried folder that would not travel. Offline: `prepare --plan`
// neither downloads nor compresses.
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadModel } from "../src/query/load-model.ts";
import type { OnnxCondition } from "../src/models/onnx/onnx-model.ts";

const ignore = Deno.build.os !== "linux";

async function gpuCheck(args: string[], env: Record<string, string>) {
  const { code, stdout, stderr } = await new Deno.Command("bash", {
    args: ["tools/gpu-check.sh", ...args],
    env: { DENO: Deno.execPath(), NO_COLOR: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decode = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code, text: decode(stdout) + decode(stderr) };
}

async function sha256(path: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", await Deno.readFile(path));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test({
  name:
    "gpu-check: the plan gathers this Deno, onnxruntime-node's Linux x64 binaries and the check's npm packages; its infodiff half runs from it offline and predicts what the repository does",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const tmp = await Deno.makeTempDir();
    const travel = await Deno.makeTempDir();
    const env = { GPU_CHECK_DIR: dir, GPU_CHECK_TMP: tmp, GPU_CHECK_TRAVEL: travel };
    try {
      const plan = await gpuCheck(["prepare", "--plan"], env);
      assert.equal(plan.code, 0, plan.text);
      // every part travels with the tree under the device tool's 64 MiB, and the calls are printed
      const parts = [
        ...plan.text.matchAll(/travels: the tree ([\d.]+) MiB \+ .*\/(\d+) ([\d.]+) MiB/g),
      ];
      assert.ok(parts.length >= 1, plan.text);
      for (const [, tree, , part] of parts) assert.ok(Number(tree) + Number(part) <= 64, plan.text);
      assert.match(
        plan.text,
        new RegExp(
          `command "bash tools/gpu-check.sh run", carry \\["${travel}/${parts.length}"\\]`,
        ),
      );
      const manifest = JSON.parse(await Deno.readTextFile(join(dir, "manifest.json")));
      assert.equal(manifest.plan, true);
      assert.equal(manifest.deno.version, "2.9.6");
      assert.equal(manifest.deno.sha256, await sha256(Deno.execPath()));
      for (
        const p of ["onnxruntime-node@1.30.0", "onnxruntime-common@1.30.0", "onnx-proto@8.0.1"]
      ) {
        assert.ok(manifest.nodeModules.includes(p), p);
      }
      assert.ok(!manifest.nodeModules.some((p: string) => p.startsWith("sharp@")), "no sharp");
      assert.ok(manifest.debs.includes("libvulkan1"));
      const listing = await new Deno.Command("tar", {
        args: ["-tf", join(dir, "node_modules.tar")],
      })
        .output();
      const files = new TextDecoder().decode(listing.stdout);
      assert.match(files, /napi-v6\/linux\/x64\/libonnxruntime\.so\.1$/m);
      assert.match(files, /napi-v6\/linux\/x64\/onnxruntime_binding\.node$/m);
      assert.doesNotMatch(files, /napi-v6\/(darwin|win32)|protobufjs\/cli\//);

      const smoke = await gpuCheck(["smoke"], env);
      assert.equal(smoke.code, 0, smoke.text);
      // the bundle's predictions for the written items equal this process's, from the repository
      const work = join(tmp, "smoke");
      const inputs = JSON.parse(await Deno.readTextFile(join(work, "inputs.json")));
      const model = await loadModel("fixtures/models/sd-vpred", { device: "cpu" });
      try {
        const read = async (name: string) => (await Deno.readFile(join(work, name))).buffer;
        const timesteps = new Int32Array(await read("timesteps.i32"));
        assert.deepEqual(Array.from(timesteps), inputs.timesteps);
        const expected = await model.predictNoise({
          noisy: new Float32Array(await read("noisy.f32")),
          logSnr: Float64Array.from(timesteps, (t) => model.schedule!.logSnr[t]),
          conditions: await Promise.all(inputs.prompts.map((p: string) => model.encode(p))),
        });
        const actual = new Float32Array(await read("fp32.f32"));
        assert.equal(actual.length, expected.length);
        const worst = actual.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0);
        assert.ok(worst <= 1e-6, `max |difference| ${worst}`);
      } finally {
        await model.dispose();
      }
    } finally {
      for (const d of [dir, tmp, travel]) await Deno.remove(d, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "gpu-check: the bundle is cut into parts no larger than asked; put together they are the bundle, and a missing or damaged part is named",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const tmp = await Deno.makeTempDir();
    const travel = await Deno.makeTempDir();
    const partBytes = 8 * 2 ** 20;
    const env = {
      GPU_CHECK_DIR: dir,
      GPU_CHECK_TMP: tmp,
      GPU_CHECK_TRAVEL: travel,
      GPU_CHECK_PART_BYTES: String(partBytes),
    };
    try {
      const plan = await gpuCheck(["prepare", "--plan"], env);
      assert.equal(plan.code, 0, plan.text);
      let bundle = 0;
      for await (const e of Deno.readDir(dir)) {
        if (e.isFile) bundle += (await Deno.stat(join(dir, e.name))).size;
      }
      const count = Number(plan.text.match(/travels in (\d+) part/)![1]);
      assert.ok(count >= Math.ceil(bundle / partBytes), `${count} parts for ${bundle} bytes`);
      const sizes = [];
      for (let k = 1; k <= count; k++) {
        sizes.push((await Deno.stat(join(travel, `${k}`, "part"))).size);
      }
      assert.ok(sizes.every((b) => b <= partBytes), `${sizes}`);
      assert.match(plan.text, new RegExp(`carry \\["${travel}/1"\\], timeout_s 60`));

      // put together, the parts are the bundle's files, byte for byte
      const together = join(tmp, "assembled");
      const smoke = await gpuCheck(["smoke"], env);
      assert.equal(smoke.code, 0, smoke.text);
      for (const name of ["manifest.json", "node_modules.tar"]) {
        assert.equal(await sha256(join(together, name)), await sha256(join(dir, name)), name);
      }

      // the second part not yet there: receive says it is to come, the last call's step refuses
      const second = join(travel, "2", "part");
      await Deno.rename(second, `${second}.away`);
      const early = await gpuCheck(["receive"], env);
      assert.equal(early.code, 0, early.text);
      assert.match(
        early.text,
        new RegExp(`arrived whole: ${count - 1} of ${count} part\\(s\\); still to come: 2;`),
      );
      const missing = await gpuCheck(["smoke"], env);
      assert.equal(missing.code, 1, missing.text);
      assert.match(missing.text, new RegExp(`part\\(s\\) 2 of ${count} missing or damaged`));
      // a part that arrived changed in one byte is refused as well
      await Deno.rename(`${second}.away`, second);
      const bytes = await Deno.readFile(second);
      bytes[0] ^= 0xff;
      await Deno.writeFile(second, bytes);
      const damaged = await gpuCheck(["smoke"], env);
      assert.equal(damaged.code, 1, damaged.text);
      assert.match(damaged.text, /part\(s\) 2 of \d+ missing or damaged/);
    } finally {
      for (const d of [dir, tmp, travel]) await Deno.remove(d, { recursive: true });
    }
  },
});

Deno.test({
  name: "gpu-check: the size check counts the tree and the carried folder against 64 MiB",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(join(dir, "small"), new Uint8Array(1024));
      // no parts: the check counts the bundle folder itself
      const none = join(dir, "no-parts");
      const fits = await gpuCheck(["budget"], { GPU_CHECK_DIR: dir, GPU_CHECK_TRAVEL: none });
      assert.equal(fits.code, 0, fits.text);
      assert.match(
        fits.text,
        /travels: the tree [\d.]+ MiB \+ .* 0\.0 MiB = [\d.]+ MiB ≤ 64\.0 MiB/,
      );
      // a sparse file: 64 MiB of apparent size, no disk
      const big = await Deno.open(join(dir, "big"), { write: true, create: true });
      await big.truncate(64 * 2 ** 20);
      big.close();
      const over = await gpuCheck(["budget"], { GPU_CHECK_DIR: dir, GPU_CHECK_TRAVEL: none });
      assert.equal(over.code, 1, over.text);
      assert.match(
        over.text,
        /over budget: the tree [\d.]+ MiB \+ .* 64\.0 MiB = [\d.]+ MiB > 64\.0 MiB/,
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "gpu-check: the families step's pipelines go into the bundle without their weights, and nothing is gathered when they were not built",
  ignore,
  fn: async () => {
    const dir = await Deno.makeTempDir();
    const travel = await Deno.makeTempDir();
    const source = await Deno.makeTempDir();
    const env = { GPU_CHECK_DIR: dir, GPU_CHECK_TRAVEL: travel, GPU_CHECK_FAMILIES_FROM: source };
    try {
      const none = await gpuCheck(["prepare", "--plan"], env);
      assert.equal(none.code, 0, none.text);
      assert.match(none.text, /families: no .*\/flux .*the bundle has no families step/);
      await assert.rejects(Deno.stat(join(dir, "families")), Deno.errors.NotFound);

      for (const family of ["flux", "sd3"]) {
        const part = join(source, family, "transformer");
        await Deno.mkdir(part, { recursive: true });
        await Deno.writeTextFile(join(part, "model.onnx"), "graph");
        await Deno.writeTextFile(join(part, "model.onnx.weights.json"), "{}");
        await Deno.writeTextFile(join(part, "model.onnx_data"), "weights");
      }
      const both = await gpuCheck(["prepare", "--plan"], env);
      assert.equal(both.code, 0, both.text);
      assert.match(both.text, /families: flux sd3 at real width/);
      for (const family of ["flux", "sd3"]) {
        const part = join(dir, "families", family, "transformer");
        assert.equal(await Deno.readTextFile(join(part, "model.onnx")), "graph");
        assert.equal(await Deno.readTextFile(join(part, "model.onnx.weights.json")), "{}");
        await assert.rejects(Deno.stat(join(part, "model.onnx_data")), Deno.errors.NotFound);
      }
    } finally {
      for (const d of [dir, travel, source]) await Deno.remove(d, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "gpu-check: the families step's infodiff half writes items, encoder outputs and predictions that the repository's model gives for them",
  ignore,
  fn: async () => {
    const work = await Deno.makeTempDir();
    try {
      const { code, stderr } = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          "tools/gpu_check_families.ts",
          "--work",
          work,
          "--device",
          "cpu",
          "--batches",
          "1",
          "--calls",
          "1",
          "--resolution",
          "64",
          "tiny=fixtures/models/tiny-flux",
        ],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert.equal(code, 0, new TextDecoder().decode(stderr));
      const dir = join(work, "tiny");
      const meta = JSON.parse(await Deno.readTextFile(join(dir, "inputs.json")));
      assert.equal(meta.family, "FluxTransformer2DModel");
      assert.deepEqual(meta.shape, [16, 8, 8]);
      assert.equal(meta.guidance, 1);
      // FLUX.1-dev's T5 length (512) × the fixture's T5 width; CLIP's pooled output
      assert.deepEqual(meta.stateShape, [512, 32]);
      assert.equal(meta.pooledLength, 16);
      const read = async (name: string) =>
        new Float32Array((await Deno.readFile(join(dir, name))).buffer);
      const model = await loadModel("fixtures/models/tiny-flux", { device: "cpu" });
      try {
        const conditions = await Promise.all(
          meta.prompts.map((p: string) => model.encode(p)),
        ) as OnnxCondition[];
        const states = await read("states.f32");
        const pooled = await read("pooled.f32");
        conditions.forEach((c, p) => {
          const n = c.lastHiddenState.length;
          assert.deepEqual(states.subarray(p * n, (p + 1) * n), c.lastHiddenState);
          const pool = c.networkInputs!.get("pooled_projections")!;
          assert.deepEqual(pooled.subarray(p * pool.length, (p + 1) * pool.length), pool);
        });
        const items = meta.items as [number, number][];
        const expected = await model.predictNoise({
          noisy: await read("noisy.f32"),
          logSnr: Float64Array.from(items, ([, a]) => meta.logSnrs[a]),
          conditions: items.map(([p]) => conditions[p]),
        });
        assert.deepEqual(await read("infodiff.f32"), expected);
      } finally {
        await model.dispose();
      }
    } finally {
      await Deno.remove(work, { recursive: true });
    }
  },
});
