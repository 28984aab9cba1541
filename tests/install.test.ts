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

// The same condition without running anything, so it holds whatever Deno's caches hold: a user's
// script has no import map, so every import of the package names its source in full (a run
// outside the repository resolved a bare "@huggingface/tokenizers" on one machine and not another).
Deno.test("every import in mod.ts and src/ is relative or names npm:, node: or jsr: in full", async () => {
  const bare: string[] = [];
  const files = ["mod.ts"];
  for await (const entry of walkTs(new URL("src/", repository))) files.push(entry);
  const specifier =
    /^\s*(?:import|export)\s[^"'`]*?from\s+["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)/gm;
  for (const file of files) {
    const text = await Deno.readTextFile(new URL(file, repository));
    for (const match of text.matchAll(specifier)) {
      const name = match[1] ?? match[2];
      if (!/^(\.{1,2}\/|npm:|node:|jsr:)/.test(name)) bare.push(`${file}: "${name}"`);
    }
  }
  assert.ok(files.length > 100, `read ${files.length} files`);
  assert.deepEqual(bare, []);
});

async function* walkTs(folder: URL, prefix = "src/"): AsyncGenerator<string> {
  for await (const entry of Deno.readDir(folder)) {
    if (entry.isDirectory) {
      yield* walkTs(new URL(`${entry.name}/`, folder), `${prefix}${entry.name}/`);
    } else if (entry.name.endsWith(".ts")) yield `${prefix}${entry.name}`;
  }
}
