
import numpy as np
import torch

from hubkit.training import TrainConfig
from hubkit.training.prep import (
    read_index,
)


def test_training_crops_are_reproducible_and_favour_glomeruli(tiny_tiles):
    from hubkit.training.data import TrainTiles

    index, root = read_index(tiny_tiles)
    a = TrainTiles(index, root, 64, (0.5,) * 3, (0.2,) * 3, samples=40, glomerulus_p=1.0, seed=3)
    b = TrainTiles(index, root, 64, (0.5,) * 3, (0.2,) * 3, samples=40, glomerulus_p=1.0, seed=3)
    for item in (0, 7):
        (xa, ma), (xb, mb) = a[item], b[item]
        assert torch.equal(xa, xb) and torch.equal(ma, mb)
    a.set_epoch(1)
    assert not torch.equal(a[0][0], b[0][0])
    # centred on a glomerulus pixel: the crop centre is foreground nearly always
    centres = [float(a[i][1][0, 32, 32]) for i in range(40)]
    assert np.mean(centres) > 0.8


def test_each_epoch_draws_new_crops_through_worker_processes(tiny_tiles):
    from hubkit.training.data import TrainTiles
    from hubkit.training.loop import train_loader

    index, root = read_index(tiny_tiles)
    ds = TrainTiles(index, root, 32, (0.5,) * 3, (0.2,) * 3, samples=4, seed=0)
    loader = train_loader(ds, TrainConfig(tiles=str(tiny_tiles), batch_size=4, workers=1))
    batches = []
    for epoch in range(2):
        ds.set_epoch(epoch)
        batches.append(next(iter(loader))[0])
    assert not torch.equal(batches[0], batches[1])
