import dataclasses

import pytest
import torch

from model.config import RESOLUTIONS, ModelConfig, ObjectiveConfig, method_name
from model.networks import FRAMED_FILL, PixelNorm, SRbVAE, StreamDropout, framed
from tests.model.conftest import images, tiny_config


@pytest.mark.parametrize("resolution", RESOLUTIONS)
def test_shapes_and_ranges_at_every_resolution(resolution):
    cfg = tiny_config(resolution)
    net = SRbVAE(cfg)
    x = images(3, resolution)

    for encoder, dim in ((net.encoder_z, cfg.z_dim), (net.encoder_e, cfg.e_dim)):
        mu, logvar = encoder(x)
        assert mu.shape == logvar.shape == (3, dim)
        assert torch.isfinite(mu).all() and torch.isfinite(logvar).all()

    z, e = torch.randn(3, cfg.z_dim) * 5, torch.randn(3, cfg.e_dim) * 5
    out = net.generator(z, e)
    assert out.shape == (3, 3, resolution, resolution)
    assert out.min() >= -1 and out.max() <= 1
    out_ref = net.generator(z, net.expand_e_ref(3))
    assert out_ref.shape == out.shape

    assert net.disc_xze(x, z, e).shape == (3,)
    assert net.disc_xz(x, z).shape == (3,)


def test_base_size_and_widths_follow_the_resolution():
    assert ModelConfig(resolution=64).base_size == 4
    assert ModelConfig(resolution=96).base_size == 6
    cfg = ModelConfig(resolution=32, base_channels=32, max_channels=128)
    assert [cfg.channels_at(s) for s in (32, 16, 8, 4)] == [32, 64, 128, 128]


def test_invalid_config_is_rejected():
    with pytest.raises(ValueError, match="resolution"):
        ModelConfig(resolution=48)
    with pytest.raises(ValueError, match="unknown"):
        ModelConfig.from_dict({"resolution": 32, "zdim": 3})


def test_pixel_norm_gives_unit_mean_square_per_pixel():
    h = PixelNorm()(torch.randn(2, 16, 4, 4) * 7)
    assert torch.allclose(h.pow(2).mean(1), torch.ones(2, 4, 4), atol=1e-4)


def test_only_the_srbvae_variant_has_discriminators():
    assert SRbVAE(tiny_config(variant="srbvae")).discriminator_parameters()
    assert not SRbVAE(tiny_config(variant="rbvae")).discriminator_parameters()
    assert SRbVAE(tiny_config(), with_discriminators=False).disc_xze is None


def test_discriminator_dropout_is_active_only_in_training():
    net = SRbVAE(tiny_config(disc_dropout=0.5))
    x, z, e = images(4, 32), torch.randn(4, 8), torch.randn(4, 4)
    net.train()
    assert not torch.equal(net.disc_xze(x, z, e), net.disc_xze(x, z, e))
    net.eval()
    assert torch.equal(net.disc_xze(x, z, e), net.disc_xze(x, z, e))


def test_stream_dropout_drops_whole_streams_per_sample():
    drop = StreamDropout(0.5)
    image, latent = torch.ones(256, 16), torch.ones(256, 16)
    drop.train()
    out_image, out_latent = drop(image, latent)
    for out in (out_image, out_latent):
        # Each sample's stream is kept whole (scaled by 1 / (1 - p)) or zeroed whole.
        assert set(out.unique().tolist()) == {0.0, 2.0}
        assert (out == out[:, :1]).all()
        assert 0.3 < (out[:, 0] == 0).float().mean() < 0.7
    # The two streams are dropped independently.
    assert not torch.equal(out_image, out_latent)
    drop.eval()
    assert all(torch.equal(a, b) for a, b in zip(drop(image, latent), (image, latent), strict=True))


def test_style_modulation_starts_as_the_identity_and_then_lets_e_scale_every_feature_map():
    plain = tiny_config(32)
    styled = dataclasses.replace(plain, style_modulation=True)
    torch.manual_seed(0)
    g_plain = SRbVAE(plain).generator
    torch.manual_seed(0)
    g_styled = SRbVAE(styled).generator
    assert g_plain.styles is None
    # One modulation per normalised feature map, as wide as it.
    norms = sum(isinstance(m, PixelNorm) for m in g_styled.net)
    assert len(g_styled.styles) == norms
    z, e = torch.randn(4, plain.z_dim), torch.randn(4, plain.e_dim)
    assert torch.equal(g_styled(z, e), g_plain(z, e))  # zero-initialised: the same function

    with torch.no_grad():
        for style in g_styled.styles:
            style.affine.weight.normal_(0, 0.3)
    other_e = torch.randn(4, plain.e_dim)
    changed = (g_styled(z, other_e) - g_styled(z, e)).abs().mean()
    unmodulated = (g_plain(z, other_e) - g_plain(z, e)).abs().mean()
    assert changed > unmodulated  # e now acts on every layer, not only through the first
    # Only e drives it: z moves the picture through the first layer as before.
    assert g_styled.styles[0].affine.in_features == plain.e_dim


def test_without_e_in_the_first_layer_the_layout_comes_from_z_and_e_acts_through_styles_alone():
    cfg = dataclasses.replace(tiny_config(32), style_modulation=True, e_in_first_layer=False)
    g = SRbVAE(cfg).generator
    assert g.fc.in_features == cfg.z_dim
    z, e = torch.randn(4, cfg.z_dim), torch.randn(4, cfg.e_dim)
    other_e = torch.randn(4, cfg.e_dim)
    # Zero-initialised modulations: e has no effect yet, z does.
    assert torch.equal(g(z, e), g(z, other_e))
    assert not torch.equal(g(z, e), g(torch.randn(4, cfg.z_dim), e))
    with torch.no_grad():
        for style in g.styles:
            style.affine.weight.normal_(0, 0.3)
    assert (g(z, other_e) - g(z, e)).abs().mean() > 0.01
    with pytest.raises(ValueError, match="style_modulation"):
        dataclasses.replace(cfg, style_modulation=False)


def test_a_grey_z_encoder_is_blind_to_a_colour_cast_and_the_e_encoder_is_not():
    cfg = dataclasses.replace(tiny_config(32), z_encoder_input="grey")
    torch.manual_seed(0)
    net = SRbVAE(cfg)
    # White strokes on black, and the same strokes coloured by c / ||c||_1 as the digits are.
    strokes = (torch.rand(2, 1, 32, 32) > 0.7).float()
    white = 2 * strokes.expand(2, 3, 32, 32) - 1
    colour = torch.tensor([0.6, 0.3, 0.1]).view(1, 3, 1, 1)
    coloured = 2 * colour * strokes - 1
    with torch.no_grad():
        z_white, z_coloured = net.encoder_z(white)[0], net.encoder_z(coloured)[0]
        e_white, e_coloured = net.encoder_e(white)[0], net.encoder_e(coloured)[0]
        other_z = net.encoder_z(
            2 * (torch.rand(2, 1, 32, 32) > 0.7).float().expand(2, 3, 32, 32) - 1
        )[0]
    assert (z_white - z_coloured).abs().max() < 1e-2 * (z_white - other_z).abs().max()
    assert (e_white - e_coloured).abs().max() > 0.1 * (z_white - other_z).abs().max()
    blank = -torch.ones(1, 3, 32, 32)  # nothing to standardise: no NaN
    assert torch.isfinite(net.encoder_z(blank)[0]).all()
    with pytest.raises(ValueError, match="z_encoder_input"):
        dataclasses.replace(cfg, z_encoder_input="hsv")


def _digit_at(
    scale: float, shift: tuple[int, int] = (0, 0), colour=(1.0, 1.0, 1.0)
) -> torch.Tensor:
    """A ring ("0") of outer radius 12 * scale, centred (plus `shift` pixels), on black. (3, 32, 32)"""
    yy, xx = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    r = ((yy - 15.5 - shift[0]) ** 2 + (xx - 15.5 - shift[1]) ** 2).sqrt()
    ring = ((r <= 12 * scale) & (r >= 9 * scale)).float()
    return 2 * ring * torch.tensor(colour).view(3, 1, 1) - 1


def test_framing_shows_a_small_digit_at_the_reference_size_in_its_own_place():
    full, half = _digit_at(1.0), _digit_at(0.5, shift=(5, -4), colour=(0.2, 0.7, 0.1))
    x = torch.stack([full, half, -torch.ones(3, 32, 32)])
    out = framed(x)
    assert out.shape == x.shape
    # Both rings now have the same outer extent, FRAMED_FILL of the frame, each about the
    # centre it had: the size is gone, the place kept.
    for img, centre in zip(out[:2], ((15.5, 15.5), (20.5, 11.5)), strict=True):
        rows = (img.amax(0) > -0.5).any(1).nonzero().flatten()
        cols = (img.amax(0) > -0.5).any(0).nonzero().flatten()
        assert abs((rows.max() - rows.min() + 1).item() - FRAMED_FILL * 32) <= 2
        assert abs((rows.max() + rows.min()).item() / 2 - centre[0]) <= 1
        assert abs((cols.max() + cols.min()).item() / 2 - centre[1]) <= 1
    # Colour is kept; a blank image is left as it is.
    assert out[1, 1].max() > out[1, 0].max() + 0.5
    assert torch.equal(out[2], x[2])


def test_a_framed_z_encoder_is_blind_to_size_and_passes_gradients_to_the_image():
    cfg = dataclasses.replace(tiny_config(32), z_encoder_input="grey", z_encoder_framed=True)
    torch.manual_seed(0)
    net = SRbVAE(cfg)
    small, large = _digit_at(0.55).unsqueeze(0), _digit_at(1.0).unsqueeze(0)
    other = torch.zeros(1, 3, 32, 32) - 1
    other[..., 6:26, 14:18] = 1.0  # a "1"
    with torch.no_grad():
        z_small, z_large, z_other = (net.encoder_z(x)[0] for x in (small, large, other))
        e_small, e_large, e_other = (net.encoder_e(x)[0] for x in (small, large, other))
    # Each encoder's change from the large ring to the small, against its change to the "1".
    assert (z_small - z_large).abs().max() < 0.3 * (z_large - z_other).abs().max()
    assert (e_small - e_large).abs().max() > 0.3 * (e_large - e_other).abs().max()
    x = small.clone().requires_grad_(True)
    net.encoder_z(x)[0].sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert "size-blind z-encoder" in method_name(cfg, ObjectiveConfig())
