"""What cuts the model's cost on a CPU without losing Dice: each lever against plain fp32, on real tiles.

The model is the starter card; the tiles are the real PAS tiles that ship with hubkit (held out from
its training), brought to the card's scale and cut into 512 px tiles, with their glomerulus masks.
Each lever runs the same tiles in the same process; reported: tiles/s, the ratio against the fp32
baseline, Dice against the truth, and Dice against the fp32 prediction (what the lever changes).

* ``fp32``: eager, NCHW, ``torch.no_grad`` (the baseline: what a plain kernel runs);
* ``bf16-cl``: hubkit's setting: inference mode, channels-last, bf16 autocast;
* ``jit-freeze``: ``torch.jit.trace`` + ``torch.jit.freeze`` + ``optimize_for_inference`` (BatchNorm
  folded into the convolutions, oneDNN fusions), fp32;
* ``compile-bf16``: ``torch.compile`` (inductor, freezing on: BatchNorm folded) of the bf16
  channels-last model; its compile time is reported apart;
* ``ort-fp32`` / ``ort-int8``: ONNX Runtime on the exported model, fp32 and static int8
  (QDQ, per-channel weights, calibrated on the first 8 tiles), if ``onnxruntime`` is installed.

    python bench/bench_levers.py                 # batch 4, 3 timed passes over 20 tiles
    python bench/bench_levers.py --levers fp32,bf16-cl,compile-bf16 --batch 8
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import torch

LEVERS = ("fp32", "bf16-cl", "jit-freeze", "compile-bf16", "ort-fp32", "ort-int8")


def real_tiles(card) -> tuple[np.ndarray, np.ndarray]:
    """``(N, 3, t, t)`` float32 normalised tiles and ``(N, t, t)`` bool truth at the card's scale."""
    from hubkit.slides import find_tile_pairs, read_image, read_mask
    from hubkit.testbed import VANDERBILT_TO_HUBMAP, sample_tiles_dir

    t, f = card.tile_size, VANDERBILT_TO_HUBMAP / card.scale
    xs, ys = [], []
    for image, mask in find_tile_pairs(sample_tiles_dir()):
        rgb, m = read_image(image), read_mask(mask)
        size = (round(rgb.shape[1] * f), round(rgb.shape[0] * f))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
        m = cv2.resize(m.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)
        for r in (0, rgb.shape[0] - t):
            for c in (0, rgb.shape[1] - t):
                xs.append(rgb[r : r + t, c : c + t])
                ys.append(m[r : r + t, c : c + t])
    x = (np.stack(xs).astype(np.float32) / 255 - np.array(card.mean, np.float32)) / np.array(card.std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2)), np.stack(ys)


def _torch_runner(model, lever: str, example: torch.Tensor) -> Callable[[np.ndarray], np.ndarray]:
    if lever == "fp32":
        def run(x):
            with torch.no_grad():
                return torch.sigmoid(model(torch.from_numpy(x))).numpy()
        return run
    if lever == "jit-freeze":
        with torch.no_grad():
            frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(model, example)))

        def run(x):
            with torch.no_grad():
                return torch.sigmoid(frozen(torch.from_numpy(x))).numpy()
        return run
    cl = model.to(memory_format=torch.channels_last)
    if lever == "compile-bf16":
        cl = torch.compile(cl, options={"freezing": True})

    def run(x):
        x = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return torch.sigmoid(cl(x).float()).numpy()
    return run


def _ort_runner(model, lever: str, example: torch.Tensor, calib: np.ndarray, tmp: Path) -> Callable:
    import onnxruntime as ort

    onnx_path = tmp / "model.onnx"
    torch.onnx.export(model, example, onnx_path, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "n"}, "y": {0: "n"}}, opset_version=17, dynamo=False)
    if lever == "ort-int8":
        from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter([{"x": calib[i : i + 1]} for i in range(len(calib))])

            def get_next(self):
                return next(self.items, None)

        pre, q = tmp / "pre.onnx", tmp / "int8.onnx"
        quant_pre_process(str(onnx_path), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(q), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        onnx_path = q
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = torch.get_num_threads()
    session = ort.InferenceSession(str(onnx_path), opts, providers=["CPUExecutionProvider"])

    def run(x):
        y = session.run(["y"], {"x": x})[0]
        return 1 / (1 + np.exp(-y))
    return run


def dice(a: np.ndarray, b: np.ndarray) -> float:
    inter, total = np.logical_and(a, b).sum(), a.sum() + b.sum()
    return float(2 * inter / total) if total else 1.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levers", default=",".join(LEVERS), help=f"from {', '.join(LEVERS)}")
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--passes", type=int, default=3, help="timed passes over all tiles")
    args = ap.parse_args()
    levers = args.levers.split(",")
    if set(levers) - set(LEVERS):
        raise SystemExit(f"unknown lever(s) {sorted(set(levers) - set(LEVERS))}; choose from {', '.join(LEVERS)}")

    from peers import STARTER  # bench/ is on the path

    from hubkit.models import zoo

    (member,) = zoo.load_zoo(zoo.default_zoo_dir(), [STARTER]).members
    card = member.card
    x, truth = real_tiles(card)
    example = torch.from_numpy(x[: args.batch])
    print(f"{card.name} ({card.architecture}/{card.encoder}), {len(x)} real {card.tile_size} px tiles "
          f"at 1/{card.scale:g}, "
          f"batch {args.batch}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    reference, base = None, None
    with tempfile.TemporaryDirectory() as tmp:
        for lever in levers:
            model = member.model.float().eval().to(memory_format=torch.contiguous_format)
            if lever.startswith("ort"):
                try:
                    run = _ort_runner(model, lever, example, x[:8], Path(tmp))
                except ImportError:
                    print(f"  {lever:13s} skipped: pip install onnxruntime onnx")
                    continue
            else:
                run = _torch_runner(model, lever, example)
            t0 = time.perf_counter()
            run(x[: args.batch])  # warm-up (compiles, plans)
            warm = time.perf_counter() - t0
            t0 = time.perf_counter()
            for _ in range(args.passes):
                prob = np.concatenate([run(x[i : i + args.batch]) for i in range(0, len(x), args.batch)])
            rate = args.passes * len(x) / (time.perf_counter() - t0)
            pred = prob[:, 0] > card.threshold
            reference = pred if reference is None else reference
            base = rate if base is None else base
            print(f"  {lever:13s} {rate:6.2f} tiles/s  x{rate / base:.2f}   Dice vs truth {dice(pred, truth):.4f}   "
                  f"vs {levers[0]} {dice(pred, reference):.4f}   first batch {warm:.1f} s")


if __name__ == "__main__":
    main()
