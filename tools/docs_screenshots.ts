/**
 * Look at the README and the docs pages the way a reader on GitHub does: each page rendered as
 * GitHub-flavoured Markdown (marked's GFM mode, heading ids as GitHub makes them, GitHub's own
 * stylesheet from github-markdown-css) into an HTML file beside its images, then a full-page
 * screenshot of it in headless Chromium (driven by puppeteer-core, which stitches pages taller than
 * a window).
 *
 *   deno run -A --unstable-raw-imports tools/docs_screenshots.ts [--out DIR (default out/docs-screenshots)] [PAGE.md ...]
 *
 * Needs chromium (Debian: apt-get install chromium). Writes DIR/<page>.html and DIR/<page>.png and
 * prints the PNGs' paths. Relative links and images resolve against the repository, so the pictures
 * a page shows appear in its screenshot.
 *
 * @module
 */
import { parseArgs } from "node:util";
import puppeteer from "npm:puppeteer-core@25.19.0";
import { Marked } from "npm:marked@18.3.0";
import { gfmHeadingId } from "npm:marked-gfm-heading-id@4.1.4";
import css from "npm:github-markdown-css@5.9.0/github-markdown-light.css" with { type: "text" };

const { values, positionals } = parseArgs({
  options: { out: { type: "string", default: "out/docs-screenshots" } },
  allowPositionals: true,
});
const pages = positionals.length > 0 ? positionals : [
  "README.md",
  ...[...Deno.readDirSync("docs")].map((e) => `docs/${e.name}`).filter((p) => p.endsWith(".md"))
    .sort(),
];
await Deno.mkdir(values.out, { recursive: true });
const out = await Deno.realPath(values.out);
const root = await Deno.realPath(".");

const browser = await puppeteer.launch({
  executablePath: chromiumPath(),
  args: ["--no-sandbox", "--disable-gpu"],
});
for (const page of pages) {
  const marked = new Marked({ gfm: true }).use(gfmHeadingId());
  const body = await marked.parse(await Deno.readTextFile(page));
  const base = `file://${root}/${
    page.includes("/") ? page.slice(0, page.lastIndexOf("/") + 1) : ""
  }`;
  const html = `<!doctype html><html><head><meta charset="utf-8"><base href="${base}">
<style>${css}
body { margin: 0; } .markdown-body { box-sizing: border-box; max-width: 980px; margin: 0 auto; padding: 45px; }</style>
<title>${page}</title></head><body><article class="markdown-body">${body}</article></body></html>`;
  const name = page.replace(/\//g, "-").replace(/\.md$/, "");
  await Deno.writeTextFile(`${out}/${name}.html`, html);
  const tab = await browser.newPage();
  await tab.setViewport({ width: 1100, height: 900 });
  await tab.goto(`file://${out}/${name}.html`, { waitUntil: "load" });
  await tab.screenshot({ path: `${out}/${name}.png`, fullPage: true });
  await tab.close();
  console.log(`${out}/${name}.png`);
}
await browser.close();

/** $CHROMIUM, or the first Chromium or Chrome binary found where Debian and others install it. */
function chromiumPath(): string {
  const candidates = [
    Deno.env.get("CHROMIUM"),
    "/usr/lib/chromium/chromium", // Debian's binary (/usr/bin/chromium is a shell wrapper)
    "/usr/bin/chromium",
    "/usr/bin/chromium-browser",
    "/usr/bin/google-chrome",
  ];
  for (const path of candidates) {
    if (path && exists(path)) return path;
  }
  throw new Error("docs_screenshots: needs chromium (apt-get install chromium, or set CHROMIUM)");
}

function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}
