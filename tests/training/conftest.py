import pytest

from training.data.faces.build import FaceSizes, build_faces


@pytest.fixture(scope="session")
def tiny_faces(tmp_path_factory):
    """A real prepared dataset, small: 32x32 synthetic faces with factors, labels, common."""
    out = tmp_path_factory.mktemp("data") / "faces-32"
    return build_faces(
        out, resolution=32, seed=0, sizes=FaceSizes(96, 96, 70, 70), workers=1, progress=False
    )


TINY_MODEL = [
    "model.resolution=32",
    "model.base_channels=8",
    "model.max_channels=16",
    "model.fc_dim=32",
    "model.z_dim=8",
    "model.e_dim=4",
]


def tiny_run(data, runs_root, name="t", steps=6, *extra):
    return [
        f"run.name={name}",
        f'run.data="{data}"',
        f'run.runs_root="{runs_root}"',
        f"run.steps={steps}",
        "run.batch_size=8",
        "run.log_every=2",
        "run.snapshot_every=3",
        "run.grid_every=3",
        'run.precision="fp32"',
        *TINY_MODEL,
        *extra,
    ]
