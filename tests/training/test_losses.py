import pytest
import torch

from hubkit.training.losses import dice_loss, get_loss, lovasz_hinge


@pytest.mark.parametrize("name", ["bce", "dice", "lovasz", "bce+dice", "bce+lovasz"])
def test_losses_prefer_the_right_answer(name):
    target = torch.zeros(2, 1, 16, 16)
    target[:, :, 4:12, 4:12] = 1
    loss = get_loss(name)
    good, bad = loss(target * 20 - 10, target), loss(-(target * 20 - 10), target)
    assert torch.isfinite(good) and good < bad


def test_perfect_predictions_cost_nothing():
    target = torch.zeros(1, 1, 8, 8)
    target[..., 2:5, 2:5] = 1
    assert dice_loss(target * 40 - 20, target) < 1e-3
    assert lovasz_hinge(target * 40 - 20, target) == 0


def test_unknown_loss_lists_the_valid_names():
    with pytest.raises(ValueError, match="bce, dice, lovasz"):
        get_loss("bce+focal")
