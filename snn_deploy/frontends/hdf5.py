"""What an HDF5 model file (NIR, netx) must satisfy before any of its data is read.

Every object must live in the file itself: external links, soft links, datasets with external
storage and virtual datasets are refused (HDF5 follows them to any readable file, whose bytes
would become weights). The declared size of every dataset counts towards ``max_memory()``
before anything is read, so a gzip bomb (a small compressed dataset that inflates to
gigabytes) or a dataset of unwritten chunks declaring a huge shape is refused up front.
"""

from __future__ import annotations

import math
from pathlib import Path

import h5py

from snn_deploy.errors import InputFileError
from snn_deploy.limits import COPY_BYTES, check_memory


def check(h5: h5py.File, path: Path) -> None:
    """Refuse ``h5`` unless every link stays inside it and its datasets fit the memory limit.

    Raises:
        InputFileError: a link or a dataset's storage points outside the file.
        ResourceLimitError: the datasets' declared sizes exceed ``max_memory()``.
    """
    links: list[tuple[str, h5py.HardLink | h5py.SoftLink | h5py.ExternalLink]] = []
    h5.visititems_links(lambda name, link: links.append((name, link)))  # raising here crashes h5py
    total = 0
    for name, link in links:
        if isinstance(link, h5py.ExternalLink):
            raise InputFileError(
                f"{path}: {name!r} is an HDF5 external link to {link.filename!r}; refused: "
                "a model file must hold all of its data"
            )
        if isinstance(link, h5py.SoftLink):
            raise InputFileError(f"{path}: {name!r} is an HDF5 soft link; refused")
        obj = h5[name]
        if not isinstance(obj, h5py.Dataset):
            continue
        if obj.external or obj.is_virtual:
            raise InputFileError(
                f"{path}: dataset {name!r} keeps its data outside the file (external storage "
                "or a virtual dataset); refused: a model file must hold all of its data"
            )
        shape = obj.shape or ()
        total += math.prod(shape) * (obj.dtype.itemsize + COPY_BYTES)
        check_memory(path, f"dataset {name!r} of shape {list(shape)}", total)
