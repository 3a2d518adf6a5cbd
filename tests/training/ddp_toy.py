"""Run by tests/training/test_distributed.py, alone or under torchrun: train a toy model without
BatchNorm through `hubkit.training.run` and save its final float32 weights (rank 0).

    python ddp_toy.py CONFIG.json OUT.pt [CRASH_MARKER]

With CRASH_MARKER, the process dies hard (os._exit) at its 6th training step unless the marker
exists (it is created first), as a lost node would: torchrun --max-restarts starts the ranks again.
"""

import os
import sys

import torch

import hubkit.training.loop as loop
from hubkit.training import load_config, run

_made = []


class Toy(torch.nn.Module):
    """Two convolutions, no BatchNorm or dropout: the gradient of a batch is the mean of its crops'."""

    def __init__(self, crash_marker: str = ""):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(),
                                        torch.nn.Conv2d(8, 1, 3, padding=1))
        self.crash_marker, self.steps = crash_marker, 0

    def forward(self, x):
        if self.training:
            self.steps += 1
            if self.crash_marker and self.steps == 6 and not os.path.exists(self.crash_marker):
                open(self.crash_marker, "w").close()
                os._exit(17)
        return self.body(x)


def toy_model(*args, **kwargs):
    torch.manual_seed(0)
    _made.append(Toy(sys.argv[3] if len(sys.argv) > 3 else ""))
    return _made[-1]


if __name__ == "__main__":
    loop.create_model = toy_model
    run(load_config(sys.argv[1]), progress=True)
    if os.environ.get("RANK", "0") == "0":
        torch.save(_made[-1].state_dict(), sys.argv[2])
