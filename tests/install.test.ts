// The package as a user gets it: a script in a folder of their own, with no deno.json and no
// import map, imports mod.ts by path and runs the quickstart (oracle and shapes-tiny).
import assert from "node:assert/strict";

const repository = new URL("..", import.meta.url);

Deno.test("a script outside the repository imports mod.ts by path and runs the quickstart", async () => {
  const folder = await Deno.makeTempDir({ prefix: "infodiff-user-" });
  assert.ok(!folder.startsWith(repository.pathname), "the folder is outside the repository");
  const mod = new URL("mod.ts", repository).href;
  const model = new URL("fixtures/models/shapes-tiny", repository).pathname;
  const image = new URL("fixtures/images/shapes-scene.png", repository).pathname;
  await Deno.writeTextFile(
    `${folder}/quickstart.ts`,
    `import { EXAMPLE_PROMPT, exampleOracle, loadModel } from "${mod}";
const oracle = exampleOracle();
const words = await oracle.info(oracle.sample(EXAMPLE_PROMPT, { seed: 1 })).given(EXAMPLE_PROMPT)
  .samples(8).perToken();
const model = await loadModel(${JSON.stringify(model)}, { device: "cpu" });
const total = await model.info(${JSON.stringify(image)}).given("a red circle").samples(4).total();
await model.dispose();
console.log(JSON.stringify({ words: words.tokens.length, finite: Number.isFinite(total.nats) }));
`,
  );
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "--allow-ffi", "--allow-sys", "quickstart.ts"],
    cwd: folder,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(output.stdout).trim().split("\n").at(-1) ?? "";
  assert.ok(output.success, new TextDecoder().decode(output.stderr));
  assert.deepEqual(JSON.parse(stdout), { words: 6, finite: true });
  await Deno.remove(folder, { recursive: true });
});
