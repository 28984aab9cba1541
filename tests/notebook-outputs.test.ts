// The notebook runner's staleness check (tools/run_notebooks.py --check-outputs): committed
// outputs match a fresh run when only floating-point noise differs, and not otherwise.
import assert from "node:assert/strict";
import { encodePng } from "../src/images/encode-png.ts";
import { Buffer } from "node:buffer";
import { NOTEBOOK_RUNNER, pythonWith } from "./helpers.ts";

const python = await pythonWith("notebook outputs", ...NOTEBOOK_RUNNER);

const png = (w: number, h: number) =>
  Buffer.from(encodePng(new Uint8Array(w * h * 3), w, h)).toString("base64");

/** compare_outputs(0, committed, fresh, tolerance) from the runner, run by Python. */
async function compare(
  committed: unknown[],
  fresh: unknown[],
  tolerance = { rtol: 1e-3, atol: 1e-3 },
) {
  const script = [
    "import json, sys",
    "sys.path.insert(0, 'tools')",
    "from run_notebooks import compare_outputs",
    "a, b, t = json.loads(sys.stdin.read())",
    "print(json.dumps(compare_outputs(0, a, b, t)))",
  ].join("\n");
  const child = new Deno.Command(python.interpreter(), {
    args: ["-c", script],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(JSON.stringify([committed, fresh, tolerance])));
  await writer.close();
  const out = await child.output();
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  return JSON.parse(new TextDecoder().decode(out.stdout)) as string | null;
}

const stream = (text: string) => ({ output_type: "stream", name: "stdout", text });
const result = (data: Record<string, string>) => ({
  output_type: "execute_result",
  data,
  metadata: {},
  execution_count: 1,
});

Deno.test({
  name:
    "notebook outputs: equal up to the tolerance pass; other numbers, words, kinds or picture sizes are stale",
  ignore: python.ignore,
}, async () => {
  assert.equal(
    await compare([stream("r = 0.5220 ± 0.1620 (n=24)")], [stream("r = 0.5224 ± 0.1620 (n=24)")]),
    null,
  );
  assert.match(
    (await compare([stream("r = 0.52 ± 0.16")], [stream("r = 0.47 ± 0.16")]))!,
    /number 0.52 committed, 0.47 now/,
  );
  assert.match((await compare([stream("n=24 items")], [stream("n=24 rows")]))!, /text differs/);
  assert.match((await compare([stream("x")], []))!, /1 committed outputs, 0 now/);
  const figure = result({ "text/plain": "strip", "image/png": png(4, 2) });
  assert.equal(
    await compare([figure], [result({ "text/plain": "strip", "image/png": png(4, 2) })]),
    null,
  );
  assert.match(
    (await compare([figure], [result({ "text/plain": "strip", "image/png": png(4, 3) })]))!,
    /picture/,
  );
  assert.match(
    (await compare([figure], [result({ "text/plain": "strip" })]))!,
    /committed output is execute_result:image\/png,text\/plain/,
  );
  // a looser tolerance from the notebook's metadata
  assert.equal(await compare([stream("0.50")], [stream("0.51")], { rtol: 0.05, atol: 0 }), null);
  // the minus sign printed as U+2212 is a number too
  assert.match(
    (await compare([stream("−0.14")], [stream("0.14")]))!,
    /number -0.14 committed, 0.14 now/,
  );
});

/** A one-cell Deno notebook. */
const notebook = (source: string) => ({
  cells: [{
    cell_type: "code",
    execution_count: null,
    id: "c1",
    metadata: {},
    outputs: [],
    source,
  }],
  metadata: {
    kernelspec: { display_name: "Deno", language: "typescript", name: "deno" },
    language_info: { file_extension: ".ts", name: "typescript" },
  },
  nbformat: 4,
  nbformat_minor: 5,
});

Deno.test({
  name:
    "the runner empties infodiff's cache before each notebook: what one stores there cannot change the next one's outputs",
  ignore: python.ignore,
}, async () => {
  const dir = await Deno.makeTempDir({ prefix: "infodiff-runner-" });
  const marker = 'const marker = `${Deno.env.get("INFODIFF_CACHE")}/marker`;\n';
  // run in name order: the first stores a file in the cache (as a self-calibrating study stores
  // its profile), the second fails if it finds it
  await Deno.writeTextFile(
    `${dir}/a.ipynb`,
    JSON.stringify(notebook(
      marker + "await Deno.mkdir(Deno.env.get('INFODIFF_CACHE')!, { recursive: true });\n" +
        'await Deno.writeTextFile(marker, "a profile");',
    )),
  );
  await Deno.writeTextFile(
    `${dir}/b.ipynb`,
    JSON.stringify(notebook(
      marker +
        'if (await Deno.stat(marker).then(() => true, () => false)) throw new Error("shared");',
    )),
  );
  const out = await new Deno.Command(python.interpreter(), {
    args: ["tools/run_notebooks.py", "--deno", Deno.execPath(), dir],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.match(text, /notebooks: 2 passed, 0 failed/, text);
  await Deno.remove(dir, { recursive: true });
});
