"""The registered datasets: one :class:`DatasetSpec` each in :data:`REGISTRY`.

A spec holds its raw files (with the sha256 of their decompressed contents and their public
sources), the sub-folder holding them, the split sizes (7291 training and 2007 test examples, the
sizes used in the paper, plus any extra evaluation splits), the fixed preparation parameters and
the user options that enter the cache fingerprint, and a build function from verified raw bytes to
tensors (in the dataset's own module: repro.data.usps, repro.data.mnist16). Adding a dataset is
one entry plus its build function.
"""

from __future__ import annotations

from types import MappingProxyType

from repro.data.mnist16 import MNIST_ORDER, MNIST_ORDERS, MNIST_SEED, build_mnist16
from repro.data.spec import DataError, DatasetSpec, Option, RawFile
from repro.data.usps import build_usps

_USPS_URL = "https://hastie.su.domains/ElemStatLearn/datasets/{}"
_MNIST_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/{}",
    "https://storage.googleapis.com/cvdf-datasets/mnist/{}",
)


def _usps_file(name: str, sha256: str) -> RawFile:
    return RawFile(name, sha256, (_USPS_URL.format(name),))


def _mnist_file(name: str, sha256: str) -> RawFile:
    return RawFile(name, sha256, tuple(u.format(name) for u in _MNIST_URLS))


REGISTRY: dict[str, DatasetSpec] = {}


def _register(spec: DatasetSpec) -> DatasetSpec:
    REGISTRY[spec.name] = spec
    return spec


_register(
    DatasetSpec(
        name="usps",
        description="USPS zip-code digits (ESL distribution), the data of LeCun et al. 1989",
        subdir="usps",
        raw_files=(
            _usps_file(
                "zip.train.gz",
                "abc9f5c75b997cabe66b5d01727d5a681c69298e1641a8d37b55433a52129dc0",
            ),
            _usps_file(
                "zip.test.gz",
                "6bde17b4f1cd68e0630cd2751d6495b5795d9165ab2dc4a0be8b7002b732f4cc",
            ),
        ),
        build=build_usps,
        n_train=7291,
        n_test=2007,
    )
)

_register(
    DatasetSpec(
        name="mnist16",
        description="MNIST resampled to 16x16 as in Karpathy's 2022 lecun1989-repro prepro.py",
        subdir="mnist",
        raw_files=(
            _mnist_file(
                "train-images-idx3-ubyte.gz",
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
            _mnist_file(
                "train-labels-idx1-ubyte.gz",
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
            _mnist_file(
                "t10k-images-idx3-ubyte.gz",
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
            _mnist_file(
                "t10k-labels-idx1-ubyte.gz",
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        ),
        build=build_mnist16,
        n_train=7291,
        n_test=2007,
        params={
            "procedure": "karpathy/lecun1989-repro prepro.py",
            "sampling": "RandomState(mnist_seed), permutation(N)[:n] per split in mnist_order",
            "scale": "float32 x/127.5-1, before resize",
            "resize": "interpolate bilinear align_corners=False antialias=False",
        },
        options=(
            Option("mnist_seed", MNIST_SEED, help="np.random.seed of the draw"),
            Option("mnist_order", MNIST_ORDER, MNIST_ORDERS, help="which split is drawn first"),
        ),
        extra_tests={"test10k": 10000},
        prep_version=2,  # 1: torch.randperm draws per split, resize before scaling
    )
)

DATASETS = tuple(REGISTRY)

# Derived views (read-only): raw file -> sha256 of its decompressed contents; dataset -> version.
SHA256 = MappingProxyType({rf.name: rf.sha256 for s in REGISTRY.values() for rf in s.raw_files})
PREP_VERSION = MappingProxyType({name: s.prep_version for name, s in REGISTRY.items()})


def dataset_spec(name: str) -> DatasetSpec:
    """The registered description of dataset `name` (sizes, raw files, options) without loading it."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise DataError(f"Unknown dataset {name!r}; choose one of: {', '.join(REGISTRY)}.") from None
