import assert from "node:assert/strict";
import { parseAro, readAro, writeAroVg } from "../src/datasets/aro.ts";
import { exportShapesDataset } from "../src/datasets/shapes/export.ts";
import { relationBetween, shapesGeometry, shapesWorld } from "../src/datasets/shapes/world.ts";
import { DatasetError } from "../src/errors.ts";

const world = shapesWorld({ seed: 8, count: 40, split: "test" });
const related = world.scenes.filter((s) => s.objects.length >= 2);

/** Runs a test on a freshly exported copy of the world, removed afterwards. */
function withExport(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = await Deno.makeTempDir();
    try {
      await exportShapesDataset(world, dir);
      await fn(dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  };
}

Deno.test(
  "relation items read back: true caption at trueIndex, false one swaps the objects",
  withExport(async (dir) => {
    const items = await readAro(`${dir}/aro_relation.json`);
    assert.equal(items.length, related.length);
    const { margin } = shapesGeometry(32);
    items.forEach((item, i) => {
      const scene = related[i];
      assert.equal(item.kind, "relation");
      assert.equal(item.group, scene.relation);
      assert.equal(item.image, `${dir}/images/${scene.id}.png`);
      assert.deepEqual(item.bbox, [0, 0, 32, 32]);
      assert.equal(item.options.length, 2);
      assert.equal(item.trueIndex, 1);
      assert.equal(item.options[item.trueIndex], scene.caption);
      const [a, b] = scene.objects;
      const name = (o: typeof a) => `${o.sizeNamed ? o.size + " " : ""}${o.colour} ${o.shape}`;
      assert.ok(item.options[0].startsWith(`a ${name(b)} ${scene.relation} a ${name(a)}`));
      // and it is false in the scene: b does not stand in that relation to a
      assert.notEqual(relationBetween(b, a, margin), scene.relation);
    });
  }),
);

Deno.test(
  "attribution items swap the two colours; group is the colour pair",
  withExport(async (dir) => {
    const items = await readAro(`${dir}/aro_attribution.json`);
    assert.equal(items.length, related.length);
    items.forEach((item, i) => {
      const [a, b] = related[i].objects;
      assert.equal(item.kind, "attribution");
      assert.equal(item.group, `${a.colour}_${b.colour}`);
      const t = item.options[item.trueIndex], f = item.options[1 - item.trueIndex];
      assert.equal(t, related[i].caption);
      assert.notEqual(f, t);
      // swapping the two colour words back gives the true caption
      const swapped = f.replace(
        new RegExp(`\\b(${a.colour}|${b.colour})\\b`, "g"),
        (c) => (c === a.colour ? b.colour : a.colour),
      );
      assert.equal(swapped, t);
    });
  }),
);

Deno.test(
  "order layout: true caption first, image relative to the JSON's folder",
  withExport(async (dir) => {
    const path = `${dir}/order.json`;
    await Deno.writeTextFile(
      path,
      JSON.stringify([
        {
          image: "val2014/x.jpg",
          caption_options: ["a dog on a mat", "a mat on a dog", "on dog a mat a"],
        },
      ]),
    );
    const [item] = await readAro(path);
    assert.equal(item.kind, "order");
    assert.equal(item.trueIndex, 0);
    assert.equal(item.options.length, 3);
    assert.equal(item.image, `${dir}/val2014/x.jpg`);
    assert.equal(item.bbox, undefined);
  }),
);

Deno.test(
  "writer round trip and checks",
  withExport(async (dir) => {
    const record = {
      image_path: "2.png",
      bbox_x: 1,
      bbox_y: 2,
      bbox_w: 3,
      bbox_h: 4,
      true_caption: "the horse is eating the grass",
      false_caption: "the grass is eating the horse",
      relation_name: "eating",
    };
    const path = `${dir}/vgr.json`;
    await writeAroVg(path, [record]);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(path)), [record]);
    const [item] = await readAro(path, { imageRoot: "/data/vg" });
    assert.deepEqual(item, {
      image: "/data/vg/2.png",
      bbox: [1, 2, 3, 4],
      options: [record.false_caption, record.true_caption],
      trueIndex: 1,
      kind: "relation",
      group: "eating",
    });
    assert.throws(() => parseAro({}), /expected a JSON array/);
    assert.throws(() => parseAro([{ ...record, bbox_w: "3" }]), /bbox_w is "3"; expected a number/);
    const { relation_name: _, ...neither } = record;
    assert.throws(() => parseAro([neither]), DatasetError);
    await assert.rejects(
      () => writeAroVg(path, [{ ...record, true_caption: 1 as unknown as string }]),
      DatasetError,
    );
  }),
);
