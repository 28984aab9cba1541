/**
 * The HTML API reference: `deno doc --html` over the package's entry points (the `exports` of
 * deno.json) into `out/api/` (not committed; `deno task check` builds it, so CI does too).
 * `--open` then opens it with the system's opener (`xdg-open`, `open`) where there is one, and
 * otherwise prints the path to open.
 *
 *   deno task doc                       # build and open
 *   deno run --allow-read --allow-write --allow-run --allow-env tools/api_docs.ts [--out DIR] [--open]
 *
 * @module
 */
import { parseArgs } from "node:util";

const { values } = parseArgs({
  options: { out: { type: "string", default: "out/api" }, open: { type: "boolean" } },
});
const config = JSON.parse(await Deno.readTextFile("deno.json"));
const entryPoints = Object.values(config.exports as Record<string, string>);
await Deno.mkdir(values.out, { recursive: true }); // deno doc makes the folder, not its parents
const built = await new Deno.Command(Deno.execPath(), {
  // --quiet: deno doc warns once per file @types/node's index.d.ts references (160 lines of
  // "Failed resolving types" about a dependency's types, not ours); errors still print
  args: [
    "doc",
    "--quiet",
    "--html",
    `--name=${config.name}`,
    `--output=${values.out}`,
    ...entryPoints,
  ],
  stdout: "inherit",
  stderr: "inherit",
}).output();
if (!built.success) Deno.exit(built.code || 1);
const index = `${values.out}/index.html`;
await Deno.stat(index); // deno doc reported success: the page must be there
console.log(`API reference of ${entryPoints.length} entry points: ${index}`);
if (values.open) await openInBrowser(index);

async function openInBrowser(path: string): Promise<void> {
  const opener = Deno.build.os === "darwin" ? "open" : "xdg-open";
  try {
    const opened = await new Deno.Command(opener, { args: [path] }).output();
    if (opened.success) return;
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  console.log(`no browser opener (${opener}) here: open ${path} yourself`);
}
