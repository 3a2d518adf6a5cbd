import numpy as np
import pytest

from hubkit.training.augment import HEDJitter, context_size, train_transforms


def test_augmentations_keep_image_and_mask_aligned():
    rng = np.random.default_rng(0)
    size = context_size(128)
    agreement = []
    transforms = train_transforms(128)
    for seed in range(20):
        transforms.set_random_seed(seed)
        mask = np.zeros((size, size), np.uint8)
        for _ in range(3):
            r, c, rad = rng.integers(20, size - 20, 2).tolist() + [int(rng.integers(8, 30))]
            yy, xx = np.ogrid[:size, :size]
            mask[(yy - r) ** 2 + (xx - c) ** 2 < rad**2] = 1
        mask[: size // 3, : size // 4] = 1  # an asymmetric block: flips and turns must move both alike
        image = np.repeat((mask * 255)[..., None], 3, axis=2)
        out = transforms(image=image, mask=mask)
        assert out["image"].shape == (128, 128, 3) and out["mask"].shape == (128, 128)
        agreement.append(((out["image"].mean(axis=2) > 127) == (out["mask"] > 0)).mean())
    assert min(agreement) > 0.97


@pytest.mark.parametrize("stain, strength, expected", [
    (0.0, 1.0, None),      # off: the starter's setting
    (0.1, 1.0, (0.1, 0.7)),
    (0.2, 0.5, (0.2, 0.35)),
])
def test_stain_jitter_joins_the_pipeline_at_its_strength(stain, strength, expected):
    found = [(t.sigma, t.p) for t in train_transforms(64, strength, stain).transforms if isinstance(t, HEDJitter)]
    assert found == ([] if expected is None else [pytest.approx(expected)])


def test_stain_jitter_recolours_tissue_and_leaves_the_mask():
    rng = np.random.default_rng(0)
    pas = np.clip(rng.normal((150, 80, 170), 20, (context_size(64),) * 2 + (3,)), 0, 255).astype(np.uint8)
    mask = np.zeros(pas.shape[:2], np.uint8)
    mask[20:60, 20:60] = 1
    plain, stained = train_transforms(64, 0.0), train_transforms(64, 0.0, 0.3)
    (jitter,) = [t for t in stained.transforms if isinstance(t, HEDJitter)]
    jitter.p = 1.0  # HED jitter always, nothing else (strength 0)
    a, b = plain(image=pas, mask=mask), stained(image=pas, mask=mask)
    assert (a["mask"] == b["mask"]).all()
    assert np.abs(a["image"].astype(int) - b["image"].astype(int)).mean() > 3
