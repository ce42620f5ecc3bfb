from __future__ import annotations

import pytest

from tests.training.data.factories import fake_mnist_files, write_mnist_dir


@pytest.fixture
def mnist_dir(tmp_path):
    """A directory of tiny synthetic MNIST files (40 train, 20 test) and their MD5 table."""
    root = tmp_path / "mnist"
    return root, write_mnist_dir(root, fake_mnist_files(40, 20))
