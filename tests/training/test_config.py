import pytest

from training.config import TrainConfig, load_config


def test_toml_file_and_overrides(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[run]\nname = "x"\nsteps = 10\n[model]\nresolution = 32\n[optim]\nlr = 2e-4\n')
    cfg = load_config(path, ["run.steps=20", "optim.betas=[0.5, 0.9]", 'run.data="d"'])
    assert (cfg.run.name, cfg.run.steps, cfg.run.data) == ("x", 20, "d")
    assert cfg.optim.lr == 2e-4 and cfg.optim.betas == (0.5, 0.9)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


def test_the_committed_configs_load():
    from pathlib import Path

    configs = sorted(Path(__file__).resolve().parents[2].joinpath("configs").glob("*.toml"))
    assert configs
    for path in configs:
        load_config(path)


@pytest.mark.parametrize(
    "override, message",
    [
        ("run.stepz=3", "unknown \\[run\\] keys"),
        ("model.zdim=3", "unknown"),
        ("steps=3", "section.key"),
    ],
)
def test_misspelt_settings_are_refused(override, message):
    with pytest.raises(ValueError, match=message):
        load_config(None, [override])


def test_the_domain_adversary_is_refused_for_the_plain_vae_before_training():
    with pytest.raises(ValueError, match="domain_weight=0"):
        load_config(None, ['model.variant="vae"', "objective.domain_weight=10"])
    assert load_config(None, ['model.variant="rbvae"', "objective.domain_weight=10"])
