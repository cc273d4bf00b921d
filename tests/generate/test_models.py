"""Every generative network: forward + backward on a tiny batch; the PixelCNN's masks and the diffusion
process checked for the properties they exist for."""

from __future__ import annotations

import pytest
import torch

from dltool.generate.models import NETWORKS


def _forward(name, net, x, y):
    family = NETWORKS.get(name).meta["family"]
    if family == "vae":
        logits, mu, logvar = net(x)
        assert logits.shape == x.shape and mu.shape == logvar.shape == (len(x), net.latent_dim)
        return logits.mean() + mu.mean() + logvar.mean()
    if family == "gan":
        z = torch.randn(len(x), net.latent_dim)
        assert net.generator(z, y).shape == x.shape
        d_real, d_fake, gp = net(x, z, y, part="discriminator", penalty=True)
        assert d_real.shape == d_fake.shape == (len(x),) and gp.ndim == 0
        return d_real.mean() + d_fake.mean() + gp + net(x, z, y, part="generator").mean()
    if family == "diffusion":
        out = net(x, torch.randint(0, 100, (len(x),)))
        assert out.shape == x.shape
        return out.mean()
    logits = net((x * 127.5 + 127.5).round().byte())
    assert logits.shape == (len(x), 256, *x.shape[1:])
    return logits.mean()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("name", NETWORKS.names())
def test_every_network_runs_forward_and_backward(name, channels):
    torch.manual_seed(0)
    kwargs = {"in_channels": channels, "img_size": 16}
    if NETWORKS.get(name).meta["family"] == "gan":
        kwargs["num_classes"] = 3
    net = NETWORKS.create(name, **kwargs)
    x = torch.rand(4, channels, 16, 16) * 2 - 1
    y = torch.tensor([0, 1, 2, 0])
    loss = _forward(name, net, x, y)
    assert torch.isfinite(loss)
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing


@pytest.mark.parametrize("channels", [1, 3])
def test_pixelcnn_is_causal(channels):
    """The logits of sub-pixel (i, j, c) change with the sub-pixels before it in raster order only."""
    torch.manual_seed(0)
    net = NETWORKS.create("pixelcnn_tiny", in_channels=channels, img_size=8).eval()
    x = torch.randint(0, 256, (1, channels, 8, 8), dtype=torch.uint8)
    i, j = 4, 3
    for c in range(channels):
        x_in = x.clone().float().requires_grad_(True)
        out = net.net(x_in / 127.5 - 1).view(1, channels, 256, 8, 8)
        out[0, c, :, i, j].sum().backward()
        seen = x_in.grad[0].abs() > 0  # (C, H, W): what the output at (i, j, c) depends on
        order = torch.arange(8 * 8 * channels).view(8, 8, channels).permute(2, 0, 1)  # raster: row, col, channel
        here = (i * 8 + j) * channels + c
        assert not seen[order >= here].any()
        assert seen[order < here].any()


def test_ddim_is_deterministic_and_both_samplers_give_images():
    from dltool.generate.diffusion import GaussianDiffusion, build_model

    torch.manual_seed(0)
    model = build_model("unet_tiny", in_channels=1, img_size=8).eval()
    process = GaussianDiffusion(20, "cosine")
    a, b = (process.sample(model.ema.module, (2, 1, 8, 8), torch.Generator().manual_seed(1), sampler="ddim",
                           steps=5) for _ in range(2))
    assert torch.equal(a, b)
    ddpm = process.sample(model.ema.module, (2, 1, 8, 8), torch.Generator().manual_seed(1))
    assert ddpm.shape == (2, 1, 8, 8) and torch.isfinite(ddpm).all()
    x0 = torch.rand(3, 1, 8, 8) * 2 - 1
    t = torch.tensor([0, 10, 19])
    noisy = process.q_sample(x0, t, torch.randn_like(x0))  # x_t keeps less of x0 the later t is
    corr = [torch.corrcoef(torch.stack([x0[k].flatten(), noisy[k].flatten()]))[0, 1] for k in range(3)]
    assert corr[0] > corr[1] > corr[2]


@pytest.mark.parametrize("sampler, steps", [("ddpm", None), ("ddim", 50), ("ddim", 7)])
def test_samplers_recover_the_data_under_the_ideal_noise_predictor(sampler, steps):
    """Data that is one image c: the ideal eps(x_t, t) = (x_t - sqrt(abar_t) c) / sqrt(1 - abar_t), so every
    step's x0 estimate is c and each sampler's walk must end on c (a wrong update rule does not)."""
    from dltool.generate.diffusion import GaussianDiffusion

    process = GaussianDiffusion(1000, "linear")
    c = torch.linspace(-0.9, 0.9, 64).view(1, 1, 8, 8)

    def ideal(x, t):
        abar = process.abar[t][:, None, None, None]
        return (x - abar.sqrt() * c) / (1 - abar).sqrt()

    x = process.sample(ideal, (4, 1, 8, 8), torch.Generator().manual_seed(0), sampler=sampler, steps=steps)
    assert torch.allclose(x, c.expand_as(x), atol=1e-3)
