import assert from "node:assert/strict";
import {
  relationBetween,
  sceneKey,
  SHAPES_VOCABULARY,
  shapesGeometry,
  type ShapesScene,
  shapesWorld,
} from "../src/datasets/shapes/world.ts";
import { COLOUR_RGB, COLOURS, RELATIONS, SHAPES } from "../src/datasets/shapes/caption.ts";
import { InvalidArgumentError } from "../src/errors.ts";

const world = shapesWorld({ seed: 11, count: 600 });

/** Pixel extent [xmin, xmax, ymin, ymax] of a mask (inclusive). */
function extent(mask: Uint8Array, size: number): [number, number, number, number] {
  let x0 = size, x1 = -1, y0 = size, y1 = -1;
  for (let p = 0; p < mask.length; p++) {
    if (!mask[p]) continue;
    const x = p % size, y = Math.floor(p / size);
    x0 = Math.min(x0, x), x1 = Math.max(x1, x), y0 = Math.min(y0, y), y1 = Math.max(y1, y);
  }
  return [x0, x1, y0, y1];
}

Deno.test("same seed gives the same bytes; another seed or split gives other scenes", () => {
  const again = shapesWorld({ seed: 11, count: 600 });
  for (let i = 0; i < world.scenes.length; i++) {
    assert.equal(again.scenes[i].caption, world.scenes[i].caption);
    assert.deepEqual(again.scenes[i].rgb, world.scenes[i].rgb);
    again.scenes[i].objects.forEach((o, j) =>
      assert.deepEqual(o.mask, world.scenes[i].objects[j].mask)
    );
  }
  const other = shapesWorld({ seed: 12, count: 50 });
  const test = shapesWorld({ seed: 11, count: 50, split: "test" });
  const same = (a: ShapesScene[], b: readonly ShapesScene[]) =>
    a.filter((s, i) => s.caption === b[i].caption && sceneKey(s) === sceneKey(b[i])).length;
  assert.ok(same([...other.scenes], world.scenes) < 5);
  assert.ok(same([...test.scenes], world.scenes) < 5);
});

Deno.test("train and test splits share no scene (caption + layout)", () => {
  const train = shapesWorld({ seed: 5, count: 3000, split: "train" });
  const test = shapesWorld({ seed: 5, count: 1000, split: "test" });
  const trainKeys = new Set(train.scenes.map(sceneKey));
  const overlap = test.scenes.filter((s) => trainKeys.has(sceneKey(s)));
  assert.equal(overlap.length, 0);
  // the guarantee matters: captions alone do repeat across splits (the world is small)
  const trainCaptions = new Set(train.scenes.map((s) => s.caption));
  assert.ok(test.scenes.some((s) => trainCaptions.has(s.caption)));
});

Deno.test("object pixels are exactly the masks, in the object's colour, on black", () => {
  for (const scene of world.scenes) {
    const n = scene.size * scene.size;
    const owner = new Int8Array(n).fill(-1);
    scene.objects.forEach((o, k) => {
      assert.equal(o.mask.length, n);
      for (let p = 0; p < n; p++) {
        if (!o.mask[p]) continue;
        assert.equal(owner[p], -1, `objects of scene ${scene.id} overlap`);
        owner[p] = k;
      }
    });
    for (let p = 0; p < n; p++) {
      const rgb = [scene.rgb[3 * p], scene.rgb[3 * p + 1], scene.rgb[3 * p + 2]];
      const expected = owner[p] < 0 ? [0, 0, 0] : COLOUR_RGB[scene.objects[owner[p]].colour];
      assert.deepEqual(rgb, [...expected]);
    }
  }
});

Deno.test("relations in captions hold geometrically with the margin", () => {
  const { margin } = shapesGeometry(32);
  let checked = 0;
  for (const scene of world.scenes) {
    if (scene.objects.length < 2) {
      assert.equal(scene.relation, undefined);
      continue;
    }
    const [a, b] = scene.objects;
    const [ax0, ax1, ay0, ay1] = extent(a.mask, scene.size);
    const [bx0, bx1, by0, by1] = extent(b.mask, scene.size);
    const gap = {
      "left of": bx0 - ax1 - 1,
      "right of": ax0 - bx1 - 1,
      "above": by0 - ay1 - 1,
      "below": ay0 - by1 - 1,
    }[scene.relation!];
    assert.ok(gap >= margin, `scene ${scene.id} "${scene.caption}": gap ${gap} < ${margin}`);
    assert.ok(scene.caption.includes(` ${scene.relation} `));
    // the opposite relation and the swapped statement are false
    assert.notEqual(relationBetween(b, a, margin), scene.relation);
    checked++;
  }
  assert.ok(checked > 300);
  const seen = new Set(world.scenes.map((s) => s.relation).filter(Boolean));
  assert.deepEqual([...seen].sort(), [...RELATIONS].sort());
});

Deno.test("captions follow the grammar with the fixed vocabulary; colours and shapes distinct", () => {
  const object = "a (?:(small|large) )?(red|green|blue|yellow) (circle|square|triangle)";
  const relation = "(left of|right of|above|below)";
  const grammar = new RegExp(`^${object}(?: ${relation} ${object}(?: and ${object})?)?$`);
  const counts = [0, 0, 0, 0];
  for (const scene of world.scenes) {
    const m = scene.caption.match(grammar);
    assert.ok(m !== null, `caption "${scene.caption}" does not follow the grammar`);
    for (const word of scene.caption.split(" ")) assert.ok(SHAPES_VOCABULARY.includes(word));
    assert.equal(new Set(scene.objects.map((o) => o.colour)).size, scene.objects.length);
    assert.equal(new Set(scene.objects.map((o) => o.shape)).size, scene.objects.length);
    scene.objects.forEach((o, k) => {
      assert.ok(COLOURS.includes(o.colour) && SHAPES.includes(o.shape));
      assert.equal(o.radius, shapesGeometry(32).radius[o.size]);
      // the caption names this object's attributes in its slot (groups: size, colour, shape)
      const slot = k === 0 ? 1 : k === 1 ? 5 : 8;
      assert.equal(m[slot], o.sizeNamed ? o.size : undefined);
      assert.equal(m[slot + 1], o.colour);
      assert.equal(m[slot + 2], o.shape);
    });
    counts[scene.objects.length]++;
  }
  // 1, 2 and 3 objects each make up roughly a third (600 scenes: within 5 standard errors)
  for (const n of [1, 2, 3]) {
    assert.ok(Math.abs(counts[n] / 600 - 1 / 3) < 5 * Math.sqrt(2 / 9 / 600));
  }
  assert.equal(new Set(SHAPES_VOCABULARY).size, SHAPES_VOCABULARY.length);
});

Deno.test("toData is CHW in [-1, 1]: v / 127.5 - 1", () => {
  const scene = world.scenes[0];
  const data = scene.toData();
  const n = scene.size * scene.size;
  assert.equal(data.length, 3 * n);
  for (let p = 0; p < n; p += 37) {
    for (let c = 0; c < 3; c++) {
      assert.equal(data[c * n + p], Math.fround(scene.rgb[3 * p + c] / 127.5 - 1));
    }
  }
  assert.ok(data.every((v) => v >= -1 && v <= 1));
});

Deno.test("training options: minObjects and sameShapeShare bind colours to objects of one shape", () => {
  const binding = shapesWorld({ seed: 5, count: 300, minObjects: 2, sameShapeShare: 0.5 });
  assert.ok(binding.scenes.every((s) => s.objects.length >= 2 && s.relation !== undefined));
  const same = binding.scenes.filter((s) => s.objects[0].shape === s.objects[1].shape);
  // half of 300 scenes, within 4 binomial SEs (√(300·¼) ≈ 8.7)
  assert.ok(Math.abs(same.length - 150) < 35, `${same.length} scenes share a shape`);
  for (const scene of binding.scenes) {
    const colours = scene.objects.map((o) => o.colour);
    assert.equal(new Set(colours).size, colours.length, "colours stay distinct");
    assert.equal(
      relationBetween(scene.objects[0], scene.objects[1], shapesGeometry(32).margin),
      scene.relation,
    );
  }
  // the defaults draw nothing more: the same scenes as options left out
  const plain = shapesWorld({ seed: 5, count: 50 });
  const explicit = shapesWorld({ seed: 5, count: 50, minObjects: 1, sameShapeShare: 0 });
  assert.deepEqual(explicit.scenes.map(sceneKey), plain.scenes.map(sceneKey));
  assert.ok(
    plain.scenes.every((s) => new Set(s.objects.map((o) => o.shape)).size === s.objects.length),
  );
  assert.throws(() => shapesWorld({ seed: 1, count: 1, minObjects: 4 }), InvalidArgumentError);
  assert.throws(() => shapesWorld({ seed: 1, count: 1, minObjects: 0 }), InvalidArgumentError);
  assert.throws(() => shapesWorld({ seed: 1, count: 1, sameShapeShare: 1.5 }), /sameShapeShare/);
});

Deno.test("maxObjects and size options; bad options throw InvalidArgumentError", () => {
  const single = shapesWorld({ seed: 2, count: 40, maxObjects: 1, size: 48 });
  assert.ok(single.scenes.every((s) => s.objects.length === 1 && s.rgb.length === 48 * 48 * 3));
  assert.equal(
    single.scenes[0].objects[0].radius,
    shapesGeometry(48).radius[single.scenes[0].objects[0].size],
  );
  assert.throws(() => shapesWorld({ seed: 1, count: 1, maxObjects: 4 }), InvalidArgumentError);
  assert.throws(() => shapesWorld({ seed: 1, count: -1 }), InvalidArgumentError);
  assert.throws(() => shapesWorld({ seed: 1, count: 1, size: 8 }), InvalidArgumentError);
  // deno-lint-ignore no-explicit-any
  assert.throws(() => shapesWorld({ seed: 1, count: 1, split: "val" as any }), /train.*test/);
});
