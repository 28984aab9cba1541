/**
 * `deno doc --lint` on the entry points, without one known false alarm: Deno's doc tool follows
 * `@types/node` (a dependency of protobufjs, which onnx-proto uses) and prints a "Failed resolving
 * types" warning for every `/// <reference path>` of its index.d.ts (82 lines, none about this
 * package's API). Every other line and the exit status pass through unchanged.
 *
 * Usage: `deno run --allow-run tools/doc_lint.ts ENTRY...`
 *
 * @module
 */
const output = await new Deno.Command(Deno.execPath(), {
  args: ["doc", "--lint", ...Deno.args],
  stdout: "piped",
  stderr: "piped",
}).output();

/** Drops each "Failed resolving types" warning about @types/node with its "at" line. */
function withoutTypesNodeNoise(text: string): string {
  const lines = text.split("\n");
  const kept: string[] = [];
  for (let i = 0; i < lines.length; i++) {
    const noise = /^Warning Failed resolving types\./.test(lines[i]) &&
      /@types\/node/.test(lines[i]);
    if (noise) {
      if (/^\s+at .*@types/.test(lines[i + 1] ?? "")) i++;
      continue;
    }
    kept.push(lines[i]);
  }
  return kept.join("\n");
}

const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
await Deno.stdout.write(new TextEncoder().encode(withoutTypesNodeNoise(decode(output.stdout))));
await Deno.stderr.write(new TextEncoder().encode(withoutTypesNodeNoise(decode(output.stderr))));
Deno.exit(output.code);
