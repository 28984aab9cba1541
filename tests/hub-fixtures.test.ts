// Every model folder in fixtures/models, found at run time (a new fixture joins by existing), is
// loaded three ways: from disk, offline from a cache laid out as Python's huggingface_hub writes
// it, and downloaded from the local hub (tests/hub-server.ts). A folder that loads from disk must
// give the same identity and the same numbers for the same seed the other two ways; one that is
// refused from disk (a deliberately unsupported export) is listed with its reason and must be
// refused with the same reason the other two ways, not fail on the way there.
import assert from "node:assert/strict";
import { join } from "node:path";
import { ModelLoadError } from "../src/errors.ts";
import { modelIdentity } from "../src/models/denoiser.ts";
import type { LoadModelOptions } from "../src/models/onnx/load-model.ts";
import { loadModel } from "../src/query/load-model.ts";
import { fixtureFiles, type ServedRepo, startHubServer, writePythonCache } from "./hub-server.ts";

const FIXTURES = "fixtures/models";
const COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678";

/** What loading and querying a model folder gives, with the folder's own path written as <dir>. */
type Outcome =
  | { readonly refused: string }
  | { readonly sha256: string; readonly total: unknown };

/**
 * Loads `location`, then asks a small fixed-seed total() of a fixed input: its estimate, SE and
 * interval, or the error it ends with (nan-unet's non-finite prediction).
 */
async function outcome(location: string, dir: string, options: LoadModelOptions): Promise<Outcome> {
  const named = (error: unknown) => {
    const e = error as Error;
    return `${e.name}: ${e.message.replaceAll(dir, "<dir>")}`;
  };
  let model;
  try {
    model = await loadModel(location, { ...options, device: "cpu" });
  } catch (error) {
    assert.ok(error instanceof ModelLoadError, `a refusal is a ModelLoadError: ${named(error)}`);
    return { refused: named(error) };
  }
  try {
    const x = new Float32Array(model.shape.reduce((a, b) => a * b)).map((_, i) => (i % 7) / 7);
    let total;
    try {
      const estimate = await model.info(x).given("a red circle").samples(4).seed(1).total();
      total = { nats: estimate.nats, se: estimate.se, interval: estimate.interval };
    } catch (error) {
      total = named(error);
    }
    return { sha256: (await modelIdentity(model)).sha256, total };
  } finally {
    await model.dispose();
  }
}

Deno.test("every fixture model loads from disk, from a Python-layout cache offline and from the hub alike", async (t) => {
  const names = [...Deno.readDirSync(FIXTURES)].filter((e) => e.isDirectory).map((e) => e.name)
    .sort();
  const repos: ServedRepo[] = [];
  for (const name of names) {
    repos.push({
      repo: `test-org/${name}`,
      commit: COMMIT,
      files: await fixtureFiles(join(FIXTURES, name)),
    });
  }
  const pythonCache = await Deno.makeTempDir();
  for (const { repo, files } of repos) await writePythonCache(pythonCache, repo, COMMIT, files);
  const hub = startHubServer(repos);
  const hubCache = await Deno.makeTempDir();
  const loaded: string[] = [];
  try {
    for (const name of names) {
      const disk = await outcome(join(FIXTURES, name), join(FIXTURES, name), {});
      const snapshot = (cache: string) =>
        join(cache, `models--test-org--${name}`, "snapshots", COMMIT);
      const label = "refused" in disk
        ? `${name}: refused from disk (${
          disk.refused.slice(0, 160)
        }…), and alike from the cache and the hub`
        : `${name}: loads from disk; the cache and the hub give its identity and numbers`;
      await t.step(label, async () => {
        const cached = await outcome(`test-org/${name}`, snapshot(pythonCache), {
          cacheDir: pythonCache,
          offline: true,
          env: {},
        });
        assert.deepEqual(cached, disk, "offline from the Python-layout cache");
        const downloaded = await outcome(`test-org/${name}`, snapshot(hubCache), {
          cacheDir: hubCache,
          endpoint: hub.url,
          env: {},
        });
        assert.deepEqual(downloaded, disk, "downloaded from the hub");
      });
      if (!("refused" in disk)) loaded.push(name);
    }
  } finally {
    await hub.close();
  }
  // the project's own trained model is among them (the test is not vacuous)
  assert.ok(loaded.includes("shapes-tiny"), `loaded from disk: ${loaded.join(", ")}`);
});
