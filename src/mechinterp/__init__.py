"""mechinterp: mechanistic interpretability through subsidiary networks.

The public API is re-exported here; submodules hold one concept each:

* :mod:`mechinterp.config`: profiles, device, seeding, cache folder, thread policy.
* :mod:`mechinterp.data`: digit data sets as device tensors.
* :mod:`mechinterp.models`: hooked classifiers and their registry.
* :mod:`mechinterp.train`: training, evaluation and the checkpoint cache.
* :mod:`mechinterp.results`: result records with their provenance.
"""

__version__ = "0.1.0"

import warnings  # noqa: E402

# transformer_lens imports tqdm.auto, which warns inside Jupyter kernels without ipywidgets;
# our progress bars use plain tqdm, so the warning is noise on every tutorial page.
warnings.filterwarnings("ignore", message="IProgress not found")

from mechinterp.config import (  # noqa: E402
    PROFILES,
    Profile,
    apply_thread_policy,
    cache_dir,
    get_device,
    get_profile,
    seed_everything,
)
from mechinterp.data import DigitData, load_digits, parse_classes  # noqa: E402
from mechinterp.errors import (  # noqa: E402
    ConfigError,
    DataError,
    DataUnavailableError,
    MechinterpError,
    ShapeError,
)
from mechinterp.models import MODEL_REGISTRY, build_model, list_models  # noqa: E402
from mechinterp.results import load_results, write_result  # noqa: E402
from mechinterp.train import (  # noqa: E402
    TrainConfig,
    TrainedClassifier,
    accuracy,
    accuracy_by_class,
    fit,
    predict,
    train_classifier,
)

apply_thread_policy()

__all__ = [
    "__version__",
    "PROFILES",
    "Profile",
    "apply_thread_policy",
    "cache_dir",
    "get_device",
    "get_profile",
    "seed_everything",
    "DigitData",
    "load_digits",
    "parse_classes",
    "ConfigError",
    "DataError",
    "DataUnavailableError",
    "MechinterpError",
    "ShapeError",
    "MODEL_REGISTRY",
    "build_model",
    "list_models",
    "load_results",
    "write_result",
    "TrainConfig",
    "TrainedClassifier",
    "accuracy",
    "accuracy_by_class",
    "fit",
    "predict",
    "train_classifier",
]
