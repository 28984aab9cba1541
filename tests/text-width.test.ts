// Labels are measured in the figure font's own advance widths (tools/glyph_widths.py reads them
// from DejaVu Sans), checked here against what librsvg draws through sharp, the figures' renderer.
import assert from "node:assert/strict";
import { loadSharp } from "../src/images/sharp.ts";
import { clipText, FIGURE_FONT, svgText, textWidth } from "../src/plots/svg.ts";
import { imageGrid, type Panel } from "../src/plots/panels.ts";
import { figureFont } from "./helpers.ts";

const font = figureFont("text width: labels drawn by librsvg");

/** The columns a black text draws on white: its first and last inked column. */
async function inked(svgBody: string, width: number, height: number) {
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">` +
    `<rect width="100%" height="100%" fill="#fff"/>${svgBody}</svg>`;
  const { data, info } = await (await loadSharp())(new TextEncoder().encode(svg))
    .greyscale().raw().toBuffer({ resolveWithObject: true });
  let first = Infinity, last = -1;
  for (let y = 0; y < info.height; y++) {
    for (let x = 0; x < info.width; x++) {
      if (data[(y * info.width + x) * info.channels] < 128) {
        first = Math.min(first, x);
        last = Math.max(last, x);
      }
    }
  }
  return { first, last };
}

Deno.test({
  name: "a label's measured width is where librsvg stops drawing it, narrow or wide glyphs alike",
  ignore: font.ignore,
}, async () => {
  font.require();
  const size = 40, left = 10;
  const cases = [
    ["iiiiiiii", "normal"],
    ["WWWW", "normal"],
    ["a red circle below a yellow square", "normal"],
    ["0.42 ± 0.03 nats", "normal"],
    ["Held-out scene 7", "bold"],
    ["MMMM mmm", "bold"],
  ] as const;
  for (const [text, weight] of cases) {
    const { last } = await inked(
      `<text x="${left}" y="55" font-family="${FIGURE_FONT}" font-size="${size}" ` +
        `font-weight="${weight}" fill="#000">${text}</text>`,
      1600,
      80,
    );
    const drawn = last + 1 - left, measured = textWidth(text, size, weight);
    // the ink ends before the advance by the last glyph's right side bearing (under 0.15 em here)
    assert.ok(
      drawn <= measured + 1 && drawn >= measured - 0.15 * size,
      `"${text}" (${weight}): drawn to ${drawn} px, measured ${measured.toFixed(1)} px`,
    );
  }
  // the estimate of 0.6 em per character this replaces was off by half or more on these
  assert.ok(textWidth("iiiiiiii", size) < 0.5 * 0.6 * size * 8);
  assert.ok(textWidth("WWWW", size) > 1.5 * 0.6 * size * 4);
});

Deno.test({
  name: "a clipped label stays inside its width when drawn, and keeps all it can",
  ignore: font.ignore,
}, async () => {
  font.require();
  const label = "a red circle below a yellow square, held out";
  for (const [maxWidth, weight] of [[120, "bold"], [200, "normal"], [90, "normal"]] as const) {
    const shown = clipText(label, maxWidth, 13, weight);
    assert.ok(shown.endsWith("…") && shown.length < label.length);
    // one more character (past any space the cut dropped) would not have fitted
    let next = shown.length;
    while (label[next - 1] === " ") next++;
    const longer = label.slice(0, next) + "…";
    assert.ok(textWidth(longer, 13, weight) > maxWidth, `${shown} could keep more: ${longer}`);
    const { last } = await inked(svgText(4, 20, label, { size: 13, weight, maxWidth }), 400, 30);
    assert.ok(last + 1 - 4 <= maxWidth, `${shown}: drawn to ${last + 1 - 4} > ${maxWidth}`);
  }
  // a label that fits is drawn whole
  assert.equal(clipText("red", 100, 13), "red");
  assert.match(svgText(0, 0, "W".repeat(5), { maxWidth: 5 * 13 }), />WWWWW</);
});

Deno.test("a grid's captions wrap by measured width: narrow letters keep a caption on one line", async () => {
  const image = { width: 8, height: 8, rgb: new Uint8Array(8 * 8 * 3).fill(128) };
  const caption = "lilt till it fills its little lilies";
  const height = async (panel: Panel) => (await imageGrid([[panel]], { size: 160 })).height;
  const bare = await height({ label: "i", image });
  // 36 characters: at 0.6 em per character a 160 px cell held 22 a line, so two lines; measured
  // at the captions' 12 px they take 149 px, one line (15 px and a 4 px gap below the picture)
  assert.ok(textWidth(caption, 12) < 160 && 0.6 * 12 * caption.length > 160);
  assert.equal(await height({ label: "i", image, caption }) - bare, 15 + 4);
  // wide letters: "WWW…" of the same length wraps onto the three lines a caption may take
  assert.equal(await height({ label: "i", image, caption: "WWWW ".repeat(8) }) - bare, 3 * 15 + 4);
});

Deno.test({
  name:
    "a grid's label may run into half the gap: notebook 02's \"ConceptAttention\" is drawn whole",
  ignore: font.ignore,
}, async () => {
  font.require();
  const image = { width: 8, height: 8, rgb: new Uint8Array(8 * 8 * 3).fill(128) };
  const grid = await imageGrid([[{ label: "ConceptAttention", image }, { label: "b", image }]], {
    size: 128,
  });
  const { data, info } = await (await loadSharp())(grid.png).greyscale().raw().toBuffer({
    resolveWithObject: true,
  });
  // the first cell spans x = 10 … 137 and its label's band y = 10 … 31; the next cell starts at 148
  let last = -1;
  for (let y = 10; y < 32; y++) {
    for (let x = 10; x < 148; x++) {
      if (data[(y * info.width + x) * info.channels] < 128) last = Math.max(last, x);
    }
  }
  // 129 px of bold 13 px text: past the 128 px cell, within its 5 px of the gap, not clipped
  assert.ok(textWidth("ConceptAttention", 13, "bold") > 128);
  assert.ok(last >= 10 + 128 - 1 && last < 10 + 128 + 5, `drawn to x = ${last}`);
});
