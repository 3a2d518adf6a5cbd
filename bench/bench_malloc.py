"""What glibc's malloc settings cost a CPU run: hubkit's `keep_freed_memory` against glibc's own settings.

Each case runs in its own process (malloc settings are per process), interleaved rounds, medians:
forward passes of the default zoo model (hubkit's CPU autocast, `hubkit.inference.config.autocast`: bf16
where the CPU has bf16 hardware, else float32; channels-last, as hubkit predicts) at a batch of 1 and of 4
tiles of 512 px, and training steps of 32 crops of 320 px (AdamW, the same autocast, as ``hubkit train`` on
a CPU), on random input. Reported: seconds a step, system (kernel) seconds
a step, page faults a step, peak RSS, and keep's speed-up over glibc. ``bench_predict.py`` has the
whole-slide figures (``hubkit`` against ``hubkit-glibc``).

    python bench/bench_malloc.py                   # 2 rounds
    python bench/bench_malloc.py --rounds 3 --steps 8
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time

CASES = {"forward, 1 tile of 512 px": ("infer", 1, 512), "forward, 4 tiles of 512 px": ("infer", 4, 512),
         "training step, 32 crops of 320 px": ("train", 32, 320)}
POLICIES = ("keep", "system")


def worker(policy: str, mode: str, batch: int, size: int, steps: int) -> dict:
    from hubkit.inference import keep_freed_memory

    keep_freed_memory(policy)
    import torch

    from hubkit.inference.config import autocast
    from hubkit.models import zoo

    model, _ = zoo.load(zoo.default_zoo_dir() / "unet-lite0-s2-soup")
    model = model.to(memory_format=torch.channels_last).train(mode == "train")
    x = torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(0))
    x = x.contiguous(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), 1e-4)

    def step():
        if mode == "infer":
            with torch.inference_mode(), autocast(x.device):
                return model(x)
        opt.zero_grad()
        with autocast(x.device):
            loss = model(x).float().mean()
        loss.backward()
        opt.step()

    step()  # warm-up: oneDNN kernels
    r0, t = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    seconds, r1 = time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF)
    return {"step": seconds / steps, "sys": (r1.ru_stime - r0.ru_stime) / steps,
            "faults": (r1.ru_minflt - r0.ru_minflt) / steps, "rss": r1.ru_maxrss / 2**20}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5, help="timed steps per process (after one warm-up step)")
    ap.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        policy, mode, batch, size = args.worker
        print(json.dumps(worker(policy, mode, int(batch), int(size), args.steps)))
        return
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(args.rounds):
        for case, (mode, batch, size) in CASES.items():
            for policy in POLICIES:
                out = subprocess.run([sys.executable, __file__, "--steps", str(args.steps), "--worker", policy, mode,
                                      str(batch), str(size)], capture_output=True, text=True)
                if out.returncode:
                    sys.exit(f"{case} ({policy}) failed:\n{out.stderr[-3000:]}")
                runs.setdefault((case, policy), []).append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{args.rounds} interleaved rounds of {args.steps} steps, medians; each case in its own process")
    for case in CASES:
        med = {p: {k: statistics.median(r[k] for r in runs[case, p]) for k in ("step", "sys", "faults", "rss")}
               for p in POLICIES}
        print(f"  {case}: keep x{med['system']['step'] / med['keep']['step']:.2f} faster")
        for p in POLICIES:
            m = med[p]
            print(f"    {p:6s} {m['step']:6.3f} s a step (system {m['sys']:.3f} s, {m['faults']:9,.0f} page faults)"
                  f"   peak RSS {m['rss']:.2f} GiB")


if __name__ == "__main__":
    main()
