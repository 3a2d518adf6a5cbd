import numpy as np

from hubkit.analysis.pictures import histogram_image


def test_histogram_handles_empty_and_nan_values():
    assert histogram_image(np.array([np.nan]), "t").shape == (240, 420, 3)
    img = histogram_image(np.arange(50.0), "t")
    assert (img[40:200, 20:400] != 255).any()
