// Models from the Hugging Face hub: the real @huggingface/hub client against a local hub on
// 127.0.0.1 (tests/hub-server.ts), the cache in Python's layout, offline use, resumed downloads,
// tokens, subfolders and refusals.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelLoadError } from "../src/errors.ts";
import {
  cachedCommit,
  hubCacheDir,
  hubEndpoint,
  hubOffline,
  hubToken,
  parseHubSpec,
} from "../src/models/hub/cache.ts";
import { resolveHubModel } from "../src/models/hub/resolve.ts";
import { loadModel } from "../src/query/load-model.ts";
import { modelIdentity } from "../src/models/denoiser.ts";
import {
  fixtureFiles,
  gitOid,
  type ServedFile,
  sha256,
  startHubServer,
  writePythonCache,
} from "./hub-server.ts";

const FIXTURE = "fixtures/models/sd-scalart-onnxdata"; // a UNet with external weights
const COMMIT = "0123456789abcdef0123456789abcdef01234567";
const text = (path: string, content: string): ServedFile => ({
  path,
  bytes: new TextEncoder().encode(content),
  lfs: false,
});
/** Files a real SD repo has that infodiff must never download. */
const UNWANTED = [
  { ...text("unet/diffusion_pytorch_model.safetensors", "weights"), lfs: true },
  { ...text("safety_checker/model.onnx", "checker"), lfs: true },
  { ...text("unet/model_fp16.onnx", "fp16"), lfs: true },
  text("README.md", "# a model"),
];

Deno.test("hub ids, cache folder, token, endpoint and offline flag as Python reads them", async () => {
  assert.deepEqual(parseHubSpec("org/name"), { repo: "org/name", revision: "main" });
  assert.deepEqual(parseHubSpec("org/name@v1.0:onnx/"), {
    repo: "org/name",
    revision: "v1.0",
    subfolder: "onnx",
  });
  for (const path of ["./org/name", "/data/sd", "sd15", "a/b/c", "../x/y"]) {
    assert.equal(parseHubSpec(path), undefined, path);
  }
  assert.throws(() => parseHubSpec("org/name:../up"), /a path inside the repository/);
  const home = Deno.env.get("HOME");
  assert.equal(hubCacheDir({ HOME: home }), join(home!, ".cache/huggingface/hub"));
  assert.equal(hubCacheDir({ XDG_CACHE_HOME: "/x" }), "/x/huggingface/hub");
  assert.equal(hubCacheDir({ HF_HOME: "/h", XDG_CACHE_HOME: "/x" }), "/h/hub");
  assert.equal(hubCacheDir({ HUGGINGFACE_HUB_CACHE: "/old", HF_HOME: "/h" }), "/old");
  assert.equal(hubCacheDir({ HF_HUB_CACHE: "/new", HUGGINGFACE_HUB_CACHE: "/old" }), "/new");
  const hfHome = await Deno.makeTempDir();
  assert.equal(await hubToken({ HF_HOME: hfHome }), undefined);
  await Deno.writeTextFile(join(hfHome, "token"), "hf_from_file\n");
  assert.equal(await hubToken({ HF_HOME: hfHome }), "hf_from_file");
  assert.equal(await hubToken({ HF_HOME: hfHome, HF_TOKEN: "hf_env" }), "hf_env");
  assert.equal(hubEndpoint({}), "https://huggingface.co");
  assert.equal(hubEndpoint({ HF_ENDPOINT: "http://mirror:8080/" }), "http://mirror:8080");
  for (const on of ["1", "ON", "yes", "True"]) assert.ok(hubOffline({ HF_HUB_OFFLINE: on }), on);
  for (const off of ["", "0", "off", undefined]) assert.ok(!hubOffline({ HF_HUB_OFFLINE: off }));
});

Deno.test("loadModel(org/name): downloads only what the loader reads, in Python's cache layout", async () => {
  const files = [...await fixtureFiles(FIXTURE), ...UNWANTED];
  const hub = startHubServer([{ repo: "test-org/tiny-sd", commit: COMMIT, files }]);
  const cacheDir = await Deno.makeTempDir();
  const options = { endpoint: hub.url, cacheDir, env: {}, device: "cpu" as const };
  try {
    const progress: number[] = [];
    const model = await loadModel("test-org/tiny-sd", {
      ...options,
      onDownloadProgress: (p) => progress.push(p.bytes),
    });
    const local = await loadModel(FIXTURE, { device: "cpu" });
    const image = new Float32Array(model.shape[0] * model.shape[1] * model.shape[2]).fill(0.1);
    const [a, b] = [
      await model.info(image).given("a red circle").samples(8).seed(1).total(),
      await local.info(image).given("a red circle").samples(8).seed(1).total(),
    ];
    assert.equal(a.nats, b.nats, "the downloaded model is the fixture");
    const identity = await modelIdentity(model);
    assert.deepEqual(identity.source, {
      repo: "test-org/tiny-sd",
      revision: "main",
      commit: COMMIT,
    });
    assert.equal(identity.sha256, (await modelIdentity(local)).sha256);
    assert.equal(model.name, "tiny-sd");
    await Promise.all([model.dispose(), local.dispose()]);

    const repoDir = join(cacheDir, "models--test-org--tiny-sd");
    assert.equal(await Deno.readTextFile(join(repoDir, "refs/main")), COMMIT); // no newline
    const served = new Map(files.map((f) => [f.path, f]));
    for (const path of ["unet/model.onnx", "unet/model.onnx_data", "model_index.json"]) {
      const file = served.get(path)!;
      const link = await Deno.readLink(join(repoDir, "snapshots", COMMIT, path));
      const depth = path.split("/").length + 1;
      const blob = file.lfs ? sha256(file.bytes) : gitOid(file.bytes);
      assert.equal(link, `${"../".repeat(depth)}blobs/${blob}`, path);
      assert.deepEqual(await Deno.readFile(join(repoDir, "blobs", blob)), file.bytes);
    }
    const resolved = hub.requests.filter((r) => r.path.includes("/resolve/")).map((r) => r.path);
    for (const unwanted of UNWANTED) {
      assert.ok(!resolved.some((p) => p.endsWith(unwanted.path)), `${unwanted.path} not fetched`);
    }
    assert.ok(hub.requests.filter((r) => r.path.includes("/tree/")).length > 1, "paginated tree");
    const weights = served.get("unet/model.onnx_data")!.bytes.length;
    assert.ok(progress.at(-1)! >= weights, "progress counts the bytes");

    // offline first: the second load makes no request at all
    const before = hub.requests.length;
    const again = await loadModel("test-org/tiny-sd", options);
    await again.dispose();
    assert.equal(hub.requests.length, before);
    // …and HF_HUB_OFFLINE reads the same cache
    const offline = await resolveHubModel(parseHubSpec("test-org/tiny-sd")!, {
      cacheDir,
      env: { HF_HUB_OFFLINE: "1" },
    });
    assert.equal(offline.commit, COMMIT);
    assert.equal(offline.downloadedBytes, 0);
  } finally {
    await hub.close();
  }
});

Deno.test("hub downloads resume a dropped transfer with a Range request and check SHA-256", async () => {
  const files = await fixtureFiles(FIXTURE);
  const hub = startHubServer([{ repo: "test-org/tiny-sd", commit: COMMIT, files }]);
  const cacheDir = await Deno.makeTempDir();
  const weights = files.find((f) => f.path === "unet/model.onnx_data")!;
  const cdn = `/cdn/${sha256(weights.bytes)}`;
  const spec = parseHubSpec("test-org/tiny-sd")!;
  try {
    hub.dropAfter(cdn, 100);
    await assert.rejects(
      () => resolveHubModel(spec, { endpoint: hub.url, cacheDir, env: {} }),
      (e: Error) =>
        e instanceof ModelLoadError && /interrupted after 100 bytes; run again/.test(e.message),
    );
    const blobs = join(cacheDir, "models--test-org--tiny-sd", "blobs");
    const partial = await Deno.stat(join(blobs, `${sha256(weights.bytes)}.incomplete`));
    assert.equal(partial.size, 100);
    assert.equal(await cachedCommit(cacheDir, spec.repo, "main"), undefined, "no ref before done");
    const model = await resolveHubModel(spec, { endpoint: hub.url, cacheDir, env: {} });
    const ranged = hub.requests.filter((r) => r.path === cdn && r.range === "bytes=100-");
    assert.equal(ranged.length, 1, "resumed from byte 100");
    assert.equal(model.downloadedBytes < files.reduce((n, f) => n + f.bytes.length, 0), true);
    assert.deepEqual(await Deno.readFile(join(model.dir, "unet/model.onnx_data")), weights.bytes);

    // a part whose bytes are wrong is caught by the SHA-256 the hub lists, removed, and refetched
    const other = await Deno.makeTempDir();
    const garbage = join(
      other,
      "models--test-org--tiny-sd",
      "blobs",
      `${sha256(weights.bytes)}.incomplete`,
    );
    await Deno.mkdir(join(garbage, ".."), { recursive: true });
    await Deno.writeFile(garbage, new Uint8Array(weights.bytes.length).fill(7));
    const fresh = { endpoint: hub.url, cacheDir: other, env: {} };
    await assert.rejects(
      () => resolveHubModel(spec, fresh),
      /do not have the SHA-256 the hub lists/,
    );
    await assert.rejects(() => Deno.stat(garbage), Deno.errors.NotFound);
    const refetched = await resolveHubModel(spec, fresh);
    assert.deepEqual(
      await Deno.readFile(join(refetched.dir, "unet/model.onnx_data")),
      weights.bytes,
    );
  } finally {
    await hub.close();
  }
});

/** Resolves the test model into `cacheDir` in a fresh Deno process; returns the model folder. */
async function resolveInProcess(url: string, cacheDir: string): Promise<string> {
  const resolve = import.meta.resolve("../src/models/hub/resolve.ts");
  const cache = import.meta.resolve("../src/models/hub/cache.ts");
  const code = `
    const { resolveHubModel } = await import(${JSON.stringify(resolve)});
    const { parseHubSpec } = await import(${JSON.stringify(cache)});
    const model = await resolveHubModel(parseHubSpec("test-org/tiny-sd"),
      { endpoint: ${JSON.stringify(url)}, cacheDir: ${JSON.stringify(cacheDir)}, env: {} });
    console.log(model.dir);`;
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", code],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  return new TextDecoder().decode(output.stdout).trim();
}

Deno.test("hub: processes fetching one model into one cache download each file once", async () => {
  // a job array's tasks start together on an empty cache: each blob is downloaded under a lock
  // in the cache's .locks/ (as Python's hub client does), the others wait and reuse it — two
  // other processes and two resolvers in this one, all at once
  const files = await fixtureFiles(FIXTURE);
  const hub = startHubServer([{ repo: "test-org/tiny-sd", commit: COMMIT, files }]);
  const cacheDir = await Deno.makeTempDir();
  const spec = parseHubSpec("test-org/tiny-sd")!;
  try {
    // the weights take a second to come, so the other processes reach their lock while it is held
    const weights = files.find((f) => f.path === "unet/model.onnx_data")!;
    hub.slowDown(`/cdn/${sha256(weights.bytes)}`, 1500);
    const here = () =>
      resolveHubModel(spec, { endpoint: hub.url, cacheDir, env: {} }).then((m) => m.dir);
    const dirs = await Promise.all([
      resolveInProcess(hub.url, cacheDir),
      resolveInProcess(hub.url, cacheDir),
      here(),
      here(),
    ]);
    for (const dir of dirs) {
      assert.deepEqual(await Deno.readFile(join(dir, "unet/model.onnx_data")), weights.bytes);
    }
    for (const file of files.filter((f) => f.lfs)) {
      const cdn = `/cdn/${sha256(file.bytes)}`;
      // the client's metadata probe asks for byte 0 alone; a download asks for all of them
      const downloads = hub.requests.filter((r) => r.path === cdn && r.range !== "bytes=0-0");
      assert.equal(downloads.length, 1, `${file.path} downloaded once`);
    }
    const locks = join(cacheDir, ".locks", "models--test-org--tiny-sd");
    assert.ok((await Array.fromAsync(Deno.readDir(locks))).some((e) => e.name.endsWith(".lock")));
  } finally {
    await hub.close();
  }
});

Deno.test("hub: private repos need the token; unknown repos, SDXL and PyTorch-only repos are refused", async () => {
  const files = await fixtureFiles(FIXTURE);
  const hub = startHubServer([
    { repo: "test-org/private", commit: COMMIT, files, token: "hf_secret" },
    { repo: "test-org/nested", commit: COMMIT, files: await fixtureFiles(FIXTURE, "onnx/") },
    {
      repo: "test-org/sdxl",
      commit: COMMIT,
      files: [...files, text("text_encoder_2/model.onnx", "x")],
    },
    {
      repo: "test-org/pytorch",
      commit: COMMIT,
      files: [
        text("model_index.json", "{}"),
        text("unet/diffusion_pytorch_model.safetensors", "w"),
      ],
    },
  ]);
  const cacheDir = await Deno.makeTempDir();
  const base = { endpoint: hub.url, cacheDir };
  const resolve = (id: string, env: Record<string, string> = {}) =>
    resolveHubModel(parseHubSpec(id)!, { ...base, env });
  try {
    await assert.rejects(
      () => resolve("test-org/private"),
      (e: Error) => e instanceof ModelLoadError && /gated or private: set HF_TOKEN/.test(e.message),
    );
    const hfHome = await Deno.makeTempDir();
    await Deno.writeTextFile(join(hfHome, "token"), "hf_secret");
    const model = await resolve("test-org/private", { HF_HOME: hfHome });
    assert.equal(model.commit, COMMIT);
    assert.ok(hub.requests.some((r) => r.auth === "Bearer hf_secret"));
    await assert.rejects(() => resolve("test-org/missing"), /no such repository or revision/);
    await assert.rejects(() => resolve("test-org/sdxl"), /text_encoder_2.*SDXL/);
    await assert.rejects(() => resolve("test-org/pytorch"), /holds PyTorch weights: export it/);
    await assert.rejects(() => resolve("test-org/nested"), /name the folder as org\/name:folder/);
    const nested = await resolve("test-org/nested:onnx");
    assert.match(nested.dir, /snapshots\/0123456789abcdef0123456789abcdef01234567\/onnx$/);
    await assert.rejects(
      () => resolve("test-org/other", { HF_HUB_OFFLINE: "1" }),
      /not in the hub cache .* `infodiff fetch test-org\/other`/,
    );
  } finally {
    await hub.close();
  }
});

Deno.test("a cache written in Python's layout loads offline, through its symlinks", async () => {
  // What huggingface_hub writes: blobs named by ETag (SHA-256 for LFS, git oid otherwise),
  // snapshots/<commit>/<path> as relative symlinks into blobs/, refs/<branch> holding the commit.
  const cacheDir = await Deno.makeTempDir();
  const commit = "fedcba9876543210fedcba9876543210fedcba98";
  const repoDir = await writePythonCache(
    cacheDir,
    "someone/tiny-sd",
    commit,
    await fixtureFiles(FIXTURE),
  );
  const model = await loadModel("someone/tiny-sd", { offline: true, cacheDir, device: "cpu" });
  try {
    assert.equal((await modelIdentity(model)).source?.commit, commit);
    const image = new Float32Array(model.shape[0] * model.shape[1] * model.shape[2]);
    assert.ok(Number.isFinite((await model.info(image).given("a").samples(4).total()).nats));
  } finally {
    await model.dispose();
  }
  // a pinned commit needs no ref
  const pinned = await resolveHubModel(parseHubSpec(`someone/tiny-sd@${commit}`)!, {
    cacheDir,
    offline: true,
  });
  assert.equal(pinned.dir, join(repoDir, "snapshots", commit));
});

Deno.test("cli fetch fills the cache; a study's --model ORG/NAME then loads it offline", async () => {
  const { main } = await import("../src/cli/main.ts");
  const files = await fixtureFiles(FIXTURE);
  const hub = startHubServer([{ repo: "test-org/tiny-sd", commit: COMMIT, files }]);
  const cacheDir = await Deno.makeTempDir();
  const saved = ["HF_ENDPOINT", "HF_HUB_CACHE", "HF_HUB_OFFLINE"].map((k) => [k, Deno.env.get(k)]);
  const lines: string[] = [];
  try {
    Deno.env.set("HF_ENDPOINT", hub.url);
    const code = await main(
      ["fetch", "test-org/tiny-sd", "--cache", cacheDir, "--quiet"],
      (l) => lines.push(l),
    );
    assert.equal(code, 0);
    assert.match(lines.join("\n"), new RegExp(`commit ${COMMIT}[\\s\\S]*downloaded [\\d.]+ MB`));
    Deno.env.set("HF_HUB_CACHE", cacheDir);
    Deno.env.set("HF_HUB_OFFLINE", "1");
    const before = hub.requests.length;
    lines.length = 0;
    const total = await main([
      "total",
      "--model",
      "test-org/tiny-sd",
      "--image",
      "fixtures/images/test-64.png",
      "--prompt",
      "a red circle",
      "--samples",
      "4",
      "--device",
      "cpu",
      "--json",
    ], (l) => lines.push(l));
    assert.equal(total, 0);
    assert.equal(hub.requests.length, before, "offline: no request");
    const json = JSON.parse(lines[0]);
    assert.equal(json.provenance.model.source.commit, COMMIT);
    await assert.rejects(() => main(["fetch", "./not-an-id"], () => {}), /fetch needs one hub id/);
  } finally {
    for (const [key, value] of saved) {
      value === undefined ? Deno.env.delete(key!) : Deno.env.set(key!, value);
    }
    await hub.close();
  }
});
