"""`python -m training data ...`: builds, prints where the dataset went."""

from __future__ import annotations

import pytest

from training.__main__ import main
from training.data.cache import PreparedDataset


def test_faces_command_builds_and_prints_the_path(tmp_path, capsys):
    out = tmp_path / "faces-32"
    args = ["data", "faces", "--out", str(out), "--resolution", "32", "--limit", "3"]
    assert main([*args, "--workers", "1", "--no-progress"]) == 0
    assert str(out.resolve()) in capsys.readouterr().out
    ds = PreparedDataset.open(out)
    assert ds.resolution == 32 and ds.meta["sizes"]["unlabelled"] == 3
    assert ds.meta["aligned"] is True  # the paper's preprocessing is the default


def test_faces_command_can_keep_the_pose(tmp_path):
    out = tmp_path / "faces-posed"
    args = ["data", "faces", "--out", str(out), "--resolution", "16", "--limit", "2", "--unaligned"]
    assert main([*args, "--workers", "1", "--no-progress"]) == 0
    assert PreparedDataset.open(out).meta["aligned"] is False


def test_digits_command_reports_a_bad_mnist_file_in_one_line(tmp_path, mnist_dir, capsys):
    root, _ = mnist_dir  # synthetic files: the real MD5 table rejects them
    out = tmp_path / "d"
    args = ["data", "digits", "--mnist-dir", str(root), "--out", str(out), "--limit", "4"]
    assert main([*args, "--workers", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train-images-idx3-ubyte.gz: MD5" in err
    assert not out.exists() and not (tmp_path / "d.partial").exists()


def test_existing_output_is_refused(tmp_path, capsys):
    (tmp_path / "f").mkdir()
    assert (
        main(["data", "faces", "--out", str(tmp_path / "f"), "--limit", "1", "--no-progress"]) == 1
    )
    assert "already exists" in capsys.readouterr().err


def test_command_is_required(capsys):
    with pytest.raises(SystemExit):
        main([])
    with pytest.raises(SystemExit):
        main(["data", "faces", "--resolution", "4"])
