"""PyTorch's half of tools/gpu-check.sh: the very network tools/build_sd15_benchmark.py exported
(same seed, same weights) under PyTorch eager on CUDA. Feeds it the items tools/gpu_check.ts wrote
(noisy.f32, timesteps.i32, hidden.f32), compares its noise predictions with infodiff's (`fp32.f32`,
`fp16.f32`), times batches, and prints one table of both.

  python3 tools/gpu_check.py --work DIR [--device cuda] [--batches 1,8,32] [--calls 3]

fp32 runs without TF32 (torch.backends.*.allow_tf32 = False), so both sides do float32 arithmetic;
fp16 is the same network with .half() weights and inputs. Bounds (max |Δ| over max |ε̂|, against
PyTorch fp32): infodiff fp32 1e-3, infodiff fp16 0.1 (REFERENCE §13 measured 0.035 for fp16
WebGPU on an SD-shaped UNet). Exit status 1 when a bound is exceeded or a prediction is missing.
"""
import argparse
import datetime
import json
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from build_sd15_benchmark import unet  # noqa: E402

BOUNDS = {"fp32": 1e-3, "fp16": 0.1}


def load_inputs(work):
    meta = json.load(open(os.path.join(work, "inputs.json")))
    if meta["predictionType"] != "epsilon":
        sys.exit(f"the model predicts {meta['predictionType']}; this check compares ε-prediction UNets")
    n = len(meta["timesteps"])
    noisy = np.fromfile(os.path.join(work, "noisy.f32"), dtype="<f4").reshape(n, *meta["shape"])
    timesteps = np.fromfile(os.path.join(work, "timesteps.i32"), dtype="<i4").astype(np.int64)
    hidden = np.fromfile(os.path.join(work, "hidden.f32"), dtype="<f4").reshape(n, *meta["hiddenShape"])
    return noisy, timesteps, hidden


def predict(model, device, dtype, noisy, timesteps, hidden):
    with torch.no_grad():
        out = model(torch.from_numpy(noisy).to(device, dtype), torch.from_numpy(timesteps).to(device),
                    torch.from_numpy(hidden).to(device, dtype))
    return out.float().cpu().numpy()


def items_per_second(model, device, dtype, batch, calls):
    """A warm-up call, then `calls` timed calls, synchronised (the work is on the GPU)."""
    x = torch.randn(batch, 4, 64, 64, device=device, dtype=dtype)
    t = torch.full((batch,), 500, device=device)
    c = torch.randn(batch, 77, 768, device=device, dtype=dtype)
    try:
        with torch.no_grad():
            model(x, t, c)
            torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(calls):
                model(x, t, c)
            torch.cuda.synchronize()
        seconds = (time.perf_counter() - start) / calls
        return {"batch": batch, "calls": calls, "secondsPerCall": seconds, "itemsPerSecond": batch / seconds}
    except torch.cuda.OutOfMemoryError as error:
        torch.cuda.empty_cache()
        return {"batch": batch, "error": str(error).split("\n")[0]}


def compare(work, label, reference):
    path = os.path.join(work, f"{label}.f32")
    if not os.path.exists(path):
        return {"label": label, "error": f"no {path}: infodiff's run did not finish"}
    ours = np.fromfile(path, dtype="<f4").reshape(reference.shape)
    scale = float(np.abs(reference).max())
    worst = float(np.abs(ours - reference).max())
    return {"label": label, "maxAbsDifference": worst, "maxAbsReference": scale,
            "relative": worst / scale, "bound": BOUNDS[label], "ok": worst / scale <= BOUNDS[label]}


def rate(timings, batch):
    row = next((r for r in timings if r["batch"] == batch), None)
    if row is None:
        return "—"
    if "error" in row:
        return "failed"
    split = row.get("sessionRunsPerCall", 1)
    return f"{row['itemsPerSecond']:.2f}" + (f" ({split:g} runs)" if split != 1 else "")


def table(summary, batches):
    infodiff = summary["infodiff"]
    lines = [f"GPU check, {summary['date']}: {summary['card']}; infodiff {infodiff['device']} "
             f"({infodiff.get('adapter')}), PyTorch {summary['torch']} eager on CUDA. Items per second:",
             "",
             f"| batch | infodiff {infodiff['device']} fp32 | PyTorch CUDA fp32 | infodiff {infodiff['device']} fp16 "
             "| PyTorch CUDA fp16 |",
             "| ----- | --- | --- | --- | --- |"]
    models = infodiff["models"]
    for b in batches:
        cells = [rate(models.get("fp32", {}).get("timings", []), b), rate(summary["torch_timings"]["fp32"], b),
                 rate(models.get("fp16", {}).get("timings", []), b), rate(summary["torch_timings"]["fp16"], b)]
        lines.append(f"| {b} | " + " | ".join(cells) + " |")
    lines.append("")
    for c in summary["agreement"]:
        if "error" in c:
            lines.append(f"{c['label']}: {c['error']}")
        else:
            lines.append(f"{c['label']}: infodiff vs PyTorch fp32 max |Δ| {c['maxAbsDifference']:.2e} "
                         f"(max |ε̂| {c['maxAbsReference']:.3f}; relative {c['relative']:.2e}, bound "
                         f"{c['bound']:g}) {'ok' if c['ok'] else 'DISAGREE'}")
    lines.append(f"PyTorch fp16 vs fp32: max |Δ| {summary['torch_fp16_vs_fp32']:.2e}")
    for label, m in models.items():
        failed = [f"batch {r['batch']}: {r['error']}" for r in m["timings"] if "error" in r]
        lines.append(f"infodiff {label}: session {m['sessionSeconds']:.1f} s" +
                     (f"; {'; '.join(failed)}" if failed else ""))
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--batches", default="1,8,32")
    parser.add_argument("--calls", type=int, default=3)
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",")]
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    noisy, timesteps, hidden = load_inputs(args.work)
    model = unet().to(args.device)
    reference = predict(model, args.device, torch.float32, noisy, timesteps, hidden)
    timings = {"fp32": [items_per_second(model, args.device, torch.float32, b, args.calls) for b in batches]}
    model = model.half()
    half = predict(model, args.device, torch.float16, noisy, timesteps, hidden)
    timings["fp16"] = [items_per_second(model, args.device, torch.float16, b, args.calls) for b in batches]
    path = os.path.join(args.work, "infodiff.json")  # absent when infodiff's half failed
    infodiff = json.load(open(path)) if os.path.exists(path) else {"device": "webgpu", "models": {}}
    summary = {
        "date": datetime.date.today().isoformat(),
        "card": torch.cuda.get_device_name() if args.device == "cuda" else args.device,
        "torch": torch.__version__,
        "infodiff": infodiff,
        "torch_timings": timings,
        "agreement": [compare(args.work, label, reference) for label in ["fp32", "fp16"]],
        "torch_fp16_vs_fp32": float(np.abs(half - reference).max()),
    }
    with open(os.path.join(args.work, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
    text = table(summary, batches)
    with open(os.path.join(args.work, "summary.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    sys.exit(0 if all(c.get("ok") for c in summary["agreement"]) else 1)


if __name__ == "__main__":
    main()
