// The README and the docs pages as a reader follows them. Their TypeScript blocks run as doc tests
// (`deno task test` passes `--doc README.md docs/`); what those cannot cover is checked here: the
// blocks fenced `ts ignore` (they need the network or a GPU) must still type-check, every link to a
// file or a heading must lead somewhere, and every `deno task` and `infodiff` command a page names
// must exist with the options it shows.
import assert from "node:assert/strict";
import { COMMANDS } from "../src/cli/commands.ts";

const PAGES = [
  "README.md",
  ...[...Deno.readDirSync("docs")].filter((e) => e.name.endsWith(".md"))
    .map((e) => `docs/${e.name}`).sort(),
];

interface Block {
  readonly page: string;
  readonly line: number;
  readonly info: string;
  readonly code: string;
}

/** The fenced code blocks of a Markdown page, with their info strings and first lines. */
export function fencedBlocks(page: string, text: string): Block[] {
  const blocks: Block[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const open = lines[i].match(/^(`{3,})(.*)$/);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.startsWith(open[1]) && l.trim() === open[1]);
    assert.ok(end > i, `${page}:${i + 1}: a code block that is never closed`);
    blocks.push({
      page,
      line: i + 1,
      info: open[2].trim(),
      code: lines.slice(i + 1, end).join("\n"),
    });
    i = end;
  }
  return blocks;
}

const pages = PAGES.map((page) => ({ page, text: Deno.readTextFileSync(page) }));
const blocks = pages.flatMap(({ page, text }) => fencedBlocks(page, text));

Deno.test("fencedBlocks reads info strings, first lines and bodies", () => {
  const found = fencedBlocks("x.md", "a\n```ts ignore\nconst a = 1;\n```\n\n```sh\nls\n```\n");
  assert.deepEqual(found.map((b) => [b.line, b.info, b.code]), [
    [2, "ts ignore", "const a = 1;"],
    [6, "sh", "ls"],
  ]);
});

Deno.test("the docs pages hold TypeScript blocks that run as doc tests", () => {
  const running = blocks.filter((b) => b.info === "ts");
  // the README's quickstart, the guide's tour, the cluster example at least
  for (const page of ["README.md", "docs/guide.md", "docs/results-files.md"]) {
    assert.ok(running.some((b) => b.page === page), `${page} has no runnable ts block`);
  }
  const kinds = new Set(
    blocks.filter((b) => /^(ts|typescript|js)\b/.test(b.info)).map((b) => b.info),
  );
  assert.deepEqual([...kinds].filter((k) => k !== "ts" && k !== "ts ignore"), [], "only ts blocks");
});

Deno.test("the blocks fenced `ts ignore` type-check", async () => {
  const ignored = blocks.filter((b) => b.info === "ts ignore");
  assert.ok(ignored.length >= 2, "the hub examples of models.md");
  // inside the repository, so that the package's own name resolves as it does in the doc tests
  await Deno.mkdir("out/docs-check", { recursive: true });
  const dir = await Deno.makeTempDir({ dir: "out/docs-check" });
  try {
    const files = ignored.map((b, i) => {
      const file = `${dir}/${b.page.replace(/\W/g, "_")}_${b.line}_${i}.ts`;
      Deno.writeTextFileSync(file, `${b.code}\nexport {};\n`);
      return file;
    });
    const checked = await new Deno.Command(Deno.execPath(), {
      args: ["check", "--quiet", ...files],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const said = new TextDecoder().decode(checked.stderr);
    assert.ok(checked.success, `a ts ignore block does not type-check:\n${said}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** GitHub's anchor of a heading: lower case, punctuation dropped, spaces to hyphens. */
export function githubAnchor(heading: string): string {
  return heading.trim().toLowerCase().replace(/[^\p{L}\p{N} _-]/gu, "").replace(/ /g, "-");
}

Deno.test("githubAnchor makes GitHub's heading anchors", () => {
  assert.equal(githubAnchor("SDXL, SD 3/3.5 and FLUX.1"), "sdxl-sd-335-and-flux1");
  assert.equal(
    githubAnchor("The reference's protocols, and where infodiff differs"),
    "the-references-protocols-and-where-infodiff-differs",
  );
  assert.equal(githubAnchor("GPUs: WebGPU and CUDA"), "gpus-webgpu-and-cuda");
});

function anchorsOf(text: string): Set<string> {
  const outside = text.replace(/^```[\s\S]*?^```/gm, "");
  return new Set(
    outside.split("\n").filter((l) => /^#{1,6} /.test(l)).map((l) =>
      githubAnchor(l.replace(/^#+ /, ""))
    ),
  );
}

Deno.test("every relative link of the README and the docs leads to a file and a heading", () => {
  const problems: string[] = [];
  for (const { page, text } of pages) {
    const base = page.includes("/") ? page.slice(0, page.lastIndexOf("/") + 1) : "";
    for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
      if (/^[a-z]+:/.test(target)) continue; // https:, mailto:
      const [path, anchor] = target.split("#");
      const file = path === "" ? page : new URL(path, `file:///${base}`).pathname.slice(1);
      let body: string;
      try {
        body = Deno.statSync(file).isFile ? Deno.readTextFileSync(file) : "";
      } catch {
        problems.push(`${page}: ${target}: no file ${file}`);
        continue;
      }
      if (anchor && file.endsWith(".md") && !anchorsOf(body).has(anchor)) {
        problems.push(`${page}: ${target}: no heading #${anchor} in ${file}`);
      }
    }
  }
  assert.deepEqual(problems, []);
});

/**
 * Each `deno task NAME` and each `infodiff CMD --opt` (also `deno task cli CMD`) in a page's code:
 * its code blocks and inline code spans, never its prose ("infodiff is a Deno package").
 */
export function namedCommands(
  text: string,
): { task?: string; command?: string; options: string[] }[] {
  const fences = /^```[^\n]*\n([\s\S]*?)^```/gm;
  const inBlocks = [...text.matchAll(fences)].map((m) => m[1].replace(/\\\n\s*/g, " "));
  const spans = [...text.replace(fences, "").matchAll(/`([^`\n]+(?:\n[^`\n]+)*)`/g)]
    .map((m) => m[1].replace(/\n/g, " "))
    .filter((span) => !span.includes("unknown option")); // an error message shown as an example
  const found: { task?: string; command?: string; options: string[] }[] = [];
  for (const line of [...inBlocks.flatMap((b) => b.split("\n")), ...spans]) {
    for (const m of line.matchAll(/deno task ([\w:-]+)/g)) {
      if (m[1] !== "cli") found.push({ task: m[1], options: [] });
    }
    // a command line starts with the command (a listing's "infodiff uses the mean" is not one)
    const cli = line.match(
      /^\s*(?:\$ )?(?:npx -y deno@[\d.]+ task cli|infodiff|deno task cli) ([a-z][\w-]*)(.*)$/,
    );
    if (cli) {
      const options = [...cli[2].matchAll(/(?:^|\s|\[)--([a-z][\w-]*)/g)].map((m) => m[1]);
      found.push({ command: cli[1], options });
    }
  }
  return found;
}

Deno.test("namedCommands reads tasks, commands and their options", () => {
  assert.deepEqual(
    namedCommands(
      "infodiff is a package: run `deno task test`, then\n```sh\ndeno task cli info --model m \\\n  --out o\n```",
    ),
    [{ command: "info", options: ["model", "out"] }, { task: "test", options: [] }],
  );
});

Deno.test("every deno task and infodiff command the pages name exists, with its options", () => {
  const tasks = Object.keys(JSON.parse(Deno.readTextFileSync("deno.json")).tasks);
  const problems: string[] = [];
  let commands = 0;
  for (const { page, text } of pages) {
    for (const named of namedCommands(text)) {
      if (named.command) commands++;
      if (named.task && !tasks.includes(named.task)) {
        problems.push(`${page}: no task ${named.task}`);
      }
      if (!named.command) continue;
      const command = COMMANDS.find((c) => c.name === named.command);
      if (!command) {
        problems.push(`${page}: no command infodiff ${named.command}`);
        continue;
      }
      for (const option of named.options) {
        if (option !== "help" && !(option in command.options)) {
          problems.push(`${page}: infodiff ${named.command} has no --${option}`);
        }
      }
    }
  }
  assert.deepEqual(problems, []);
  assert.ok(
    commands >= 10,
    `only ${commands} command lines found: the reader changed, not the pages`,
  );
});

Deno.test("the README stays a five-minute read", () => {
  const lines = Deno.readTextFileSync("README.md").split("\n").length;
  assert.ok(lines <= 250, `README.md has ${lines} lines; the depth belongs in docs/`);
});
