"""The table of known data sets: file names, sizes, checksums, mirrors and class names.

Every data set ships the same four gzipped IDX files (``FILE_NAMES``), so the
loader and the downloader never special-case one data set. Mirrors are base
URLs ending in ``/``; a file's URL is the base plus its name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from mlptrain.errors import ConfigError

FILE_NAMES: tuple[str, ...] = (
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
)


@dataclass(frozen=True)
class RemoteFile:
    """One published ``.gz`` file; verified by sha256 when known, else by md5."""

    name: str
    size: int | None
    sha256: str | None
    md5: str | None

    def __post_init__(self) -> None:
        # A file nobody can verify would be trusted blindly; refuse to describe one.
        if self.sha256 is None and self.md5 is None:
            raise ValueError(f"{self.name}: a RemoteFile needs a sha256 or an md5")


@dataclass(frozen=True)
class DatasetSpec:
    """A data set: its files in ``FILE_NAMES`` order and mirrors tried in order."""

    name: str
    description: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    class_names: tuple[str, ...]
    mirror_safe: bool = False  # does a mirror image keep its class? (clothes yes; digits, characters no)


# Sizes and checksums: the well-known MNIST MD5s, and sha256 as used by common dataset
# loaders. yann.lecun.com is not a mirror: it answers with errors or a login page.
_MNIST = DatasetSpec(
    name="mnist",
    description="MNIST handwritten digits (LeCun, Cortes, Burges), 60k train / 10k test",
    files=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            9912422,
            "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            28881,
            "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            "d53e105ee54ea40749a09fcbcd1e9432",
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            1648877,
            "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            "9fb629c4189551a2d022fa330f9573f3",
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            4542,
            "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
            "ec29112dd5afa0611ce80d1b7f02629c",
        ),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
    ),
    class_names=tuple(str(digit) for digit in range(10)),
)

# Sizes and checksums: the MD5s published in the zalandoresearch/fashion-mnist README.
_FASHION_MNIST = DatasetSpec(
    name="fashion-mnist",
    description="Fashion-MNIST clothing images (Zalando Research), 60k train / 10k test",
    files=(
        RemoteFile(
            "train-images-idx3-ubyte.gz",
            26421880,
            "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        ),
        RemoteFile(
            "train-labels-idx1-ubyte.gz",
            29515,
            "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            "25c81989df183df01b3e8a0aad5dffbe",
        ),
        RemoteFile(
            "t10k-images-idx3-ubyte.gz",
            4422102,
            "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            "bef4ecab320f06d8554ea6380940ec79",
        ),
        RemoteFile(
            "t10k-labels-idx1-ubyte.gz",
            5148,
            "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            "bb300cfdad3c16e7a12a480ee83cd310",
        ),
    ),
    mirrors=(
        "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
        "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    ),
    class_names=(
        "T-shirt/top",
        "Trouser",
        "Pullover",
        "Dress",
        "Coat",
        "Sandal",
        "Shirt",
        "Sneaker",
        "Bag",
        "Ankle boot",
    ),
    mirror_safe=True,
)

# No sha256 is published for KMNIST. MD5s: torchvision's KMNIST class
# (pytorch/vision, torchvision/datasets/mnist.py). Sizes: the git-annex keys
# (MD5E-s<size>--<md5>.gz) of datasets-mila/datasets--kmnist, whose MD5s agree.
_KMNIST = DatasetSpec(
    name="kmnist",
    description="Kuzushiji-MNIST cursive hiragana (ROIS-CODH), 60k train / 10k test",
    files=(
        RemoteFile("train-images-idx3-ubyte.gz", 18165135, sha256=None,
                   md5="bdb82020997e1d708af4cf47b453dcf7"),
        RemoteFile("train-labels-idx1-ubyte.gz", 29497, sha256=None,
                   md5="e144d726b3acfaa3e44228e80efcd344"),
        RemoteFile("t10k-images-idx3-ubyte.gz", 3041136, sha256=None,
                   md5="5c965bf0a639b31b8f53240b1b52f4d7"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", 5120, sha256=None,
                   md5="7320c461ea6c1c855c0b718fb2a4b134"),
    ),
    mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
    # The label order of the KMNIST paper (Clanuwat et al. 2018, table 1) and its kmnist_classmap.csv.
    class_names=("o (お)", "ki (き)", "su (す)", "tsu (つ)", "na (な)", "ha (は)", "ma (ま)", "ya (や)",
                 "re (れ)", "wo (を)"),
)

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec for spec in (_MNIST, _FASHION_MNIST, _KMNIST)
}


def dataset_names() -> str:
    """The known names in table order, as help and messages list them: ``mnist, fashion-mnist, kmnist``."""
    return ", ".join(DATASETS)


def get_dataset(name: str) -> DatasetSpec:
    """The spec called ``name``; ConfigError (a usage error) listing the known names, with a close one
    suggested for a typo."""
    spec = DATASETS.get(name)
    if spec is None:
        raise ConfigError(f"unknown data set {name!r}; choose one of: {dataset_names()}{did_you_mean(name)}")
    return spec


def did_you_mean(name: str) -> str:
    """``; did you mean 'mnist'?`` for a typo or a trailing slash, else nothing."""
    stripped = name.rstrip("/\\")
    close = [stripped] if stripped in DATASETS else difflib.get_close_matches(name, list(DATASETS), n=1, cutoff=0.4)
    return f"; did you mean {close[0]!r}?" if close else ""
