import numpy as np

from hubkit.training.augment import context_size, train_transforms


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
