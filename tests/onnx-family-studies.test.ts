// The studies take a Denoiser, so they run on every family (issue 24, part 5): localization,
// relations, PID, NLL and the intervention on the tiny SDXL, SD 3 and FLUX.1 pipelines, each row
// finishing with finite numbers. The attention baselines of the transformers (SD 3, FLUX.1) are
// reported unavailable with the reason; SDXL's UNet is read as SD's.
import assert from "node:assert/strict";
import { localizationStudy } from "../src/studies/localization.ts";
import { relationStudy } from "../src/studies/relations.ts";
import { pidStudy } from "../src/studies/pid-study.ts";
import { interventionStudy } from "../src/studies/intervention.ts";
import type { LocalizationRow } from "../src/studies/localization-rows.ts";
import { loadModel, type OnnxModel } from "../src/query/load-model.ts";

const IMAGE = "fixtures/images/test-64.png";
const CAPTION = "a small red circle to the left of a big blue square on the green grass";

async function withModel(name: string, body: (model: OnnxModel) => Promise<void>) {
  const model = await loadModel(`fixtures/models/${name}`, { device: "cpu", batchSize: 4 });
  try {
    await body(model);
  } finally {
    await model.dispose();
  }
}

/** One localization row: the circle's word and a mask of the image's left half. */
function row(): LocalizationRow {
  return {
    id: "circle",
    image: IMAGE,
    caption: CAPTION,
    word: "circle",
    category: "circle",
    groundTruth: () => ({
      mask: Uint8Array.from({ length: 64 * 64 }, (_, i) => (i % 64 < 32 ? 1 : 0)),
      width: 64,
      height: 64,
    }),
  };
}

for (const name of ["tiny-sd3", "tiny-flux"]) {
  Deno.test(`${name}: localization runs with the transformer's joint-attention and concept-attention maps`, async () => {
    await withModel(name, async (model) => {
      assert.equal(model.attention.supported(), true);
      const result = await localizationStudy(model, [row()], {
        samples: 4,
        attentionSteps: 4,
        methods: [
          "information",
          "whole-image",
          "attention",
          "attention-at-sampled-noise",
          "concept-attention",
        ],
        keepMaps: true,
      });
      assert.ok(result.maps("circle")?.conceptAttention, "the concept map is kept for the gallery");
      assert.equal(result.rows.length, 1, `failures: ${JSON.stringify(result.failures)}`);
      for (const summary of result.summary) {
        assert.equal(summary.unavailable, undefined, summary.method);
        assert.ok(Number.isFinite(summary.mIoUFixed), `${summary.method}: ${summary.mIoUFixed}`);
      }
      // a provider without the concept hook: the study says so, not that the model lacks it
      const { supportsAttention } = await import("../src/attention/capability.ts");
      const { wordAttention } = await import("../src/attention/word-attention.ts");
      const bare = await localizationStudy(model, [row()], {
        samples: 2,
        methods: ["information", "concept-attention"],
        attention: { supportsAttention, wordAttention },
      });
      assert.match(
        bare.method("concept-attention").unavailable ?? "",
        /provider given \(options.attention\) has no supportsConceptAttention/,
      );
    });
  });
}

Deno.test("tiny-sdxl: localization runs with its UNet's cross-attention (the edited graph gets text_embeds and time_ids)", async () => {
  await withModel("tiny-sdxl", async (model) => {
    assert.equal(model.attention.supported(), true);
    const result = await localizationStudy(model, [row()], {
      samples: 4,
      attentionSteps: 4,
      methods: ["information", "attention", "attention-at-sampled-noise", "concept-attention"],
    });
    assert.equal(result.rows.length, 1, `failures: ${JSON.stringify(result.failures)}`);
    for (const summary of result.summary) {
      if (summary.method === "concept-attention") {
        assert.match(summary.unavailable ?? "", /does not expose/);
        continue;
      }
      assert.equal(summary.unavailable, undefined, summary.method);
      assert.ok(Number.isFinite(summary.mIoUFixed), `${summary.method}: ${summary.mIoUFixed}`);
    }
  });
});

for (const name of ["tiny-sdxl", "tiny-sd3", "tiny-flux"]) {
  Deno.test(`${name}: relations, PID, NLL and the intervention run on it`, async () => {
    await withModel(name, async (model) => {
      const relations = await relationStudy(model, [{
        image: IMAGE,
        options: [
          "a small red square to the left of a big blue circle on the green grass",
          CAPTION,
        ],
        trueIndex: 1,
        kind: "relation",
        group: "left of",
      }], { samples: 4 });
      assert.equal(relations.failures.length, 0, JSON.stringify(relations.failures));
      assert.equal(relations.accuracy.n, 1);

      const pid = await pidStudy(model, [{
        image: IMAGE,
        prompt: CAPTION,
        wordA: "red",
        wordB: "circle",
      }], { samples: 4 });
      assert.equal(pid.failures.length, 0, JSON.stringify(pid.failures));
      const terms = Object.values(pid.rows[0].plain);
      assert.ok(terms.length > 0 && terms.every((term) => Number.isFinite(term.nats)));

      const nll = await model.info(IMAGE).given(CAPTION).samples(4).seed(1).nll();
      assert.ok(Number.isFinite(nll.nats) && nll.nats > 0, `nll ${nll.nats}`);

      const intervention = await interventionStudy(model, [{
        image: IMAGE,
        caption: CAPTION,
        word: "red",
      }], { samples: 4, steps: 4, resamples: 10 });
      assert.equal(intervention.failures.length, 0, JSON.stringify(intervention.failures));
      assert.equal(intervention.items.length, 1);
    });
  });
}
