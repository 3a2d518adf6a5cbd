import numpy as np
import pytest
import torch

from hubkit.inference.tta import TTA, get_tta


@pytest.mark.parametrize("name", list(TTA))
def test_tta_inverses_are_exact(name):
    x = torch.arange(2 * 3 * 5 * 5, dtype=torch.float32).reshape(2, 3, 5, 5)
    seen = set()
    for t in get_tta(name):
        y = t.forward(x)
        assert torch.equal(t.inverse(y), x)
        assert np.array_equal(t.inverse(t.forward(x.numpy())), x.numpy())
        seen.add(tuple(y.flatten().tolist()))
    assert len(seen) == len(get_tta(name))  # every transform is a different view


def test_unknown_tta_lists_the_valid_names():
    with pytest.raises(ValueError, match="valid names: none, flip, flip2, d4"):
        get_tta("d8")
