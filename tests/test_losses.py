"""GAN modes against their formulas, the gradient penalty, the pool and the pix2pix objective."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.losses import GANLoss, ImagePool, Pix2PixObjective, gradient_penalty

LOGITS = torch.tensor([[[[-2.0, 0.0], [1.0, 3.0]]]])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_vanilla_is_bce_with_logits():
    values = LOGITS.flatten().tolist()
    real = GANLoss("vanilla")(LOGITS, True)
    fake = GANLoss("vanilla")(LOGITS, False)
    assert real.item() == pytest.approx(sum(-math.log(sigmoid(v)) for v in values) / 4, rel=1e-6)
    assert fake.item() == pytest.approx(
        sum(-math.log(1 - sigmoid(v)) for v in values) / 4, rel=1e-6
    )


def test_lsgan_is_squared_error_with_smoothing():
    values = LOGITS.flatten().tolist()
    assert GANLoss("lsgan")(LOGITS, True).item() == pytest.approx(
        sum((v - 1) ** 2 for v in values) / 4
    )
    smoothed = GANLoss("lsgan", real_label=0.9)(LOGITS, True)
    assert smoothed.item() == pytest.approx(sum((v - 0.9) ** 2 for v in values) / 4, rel=1e-6)
    assert GANLoss("lsgan")(LOGITS, False).item() == pytest.approx(sum(v**2 for v in values) / 4)


def test_hinge_differs_between_discriminator_and_generator():
    values = LOGITS.flatten().tolist()
    loss = GANLoss("hinge")
    assert loss(LOGITS, True).item() == pytest.approx(sum(max(0, 1 - v) for v in values) / 4)
    assert loss(LOGITS, False).item() == pytest.approx(sum(max(0, 1 + v) for v in values) / 4)
    assert loss(LOGITS, True, for_discriminator=False).item() == pytest.approx(-sum(values) / 4)


def test_wgan_is_mean_critic_score():
    loss = GANLoss("wgangp")
    assert loss(LOGITS, True).item() == pytest.approx(-0.5)
    assert loss(LOGITS, False).item() == pytest.approx(0.5)


def test_lists_of_predictions_are_averaged_and_features_ignored():
    a, b = torch.zeros(1, 1, 2, 2), torch.ones(1, 1, 3, 3)
    loss = GANLoss("lsgan")
    expected = 0.5 * (loss(a, True) + loss(b, True))
    assert loss([a, b], True).item() == pytest.approx(expected.item())
    feature = torch.randn(1, 8, 4, 4)
    assert loss([[feature, a], [feature, b]], True).item() == pytest.approx(expected.item())


def test_unknown_gan_mode_names_the_key():
    with pytest.raises(ConfigError, match=r"loss.gan_mode='wgan'.*vanilla, lsgan, hinge, wgangp"):
        GANLoss("wgan")


def test_gradient_penalty_is_zero_for_unit_gradient_and_differentiable():
    # D(x) = sum(w * x) has gradient w everywhere: the penalty is (|w| - 1)^2.
    w = torch.zeros(1, 1, 2, 2)
    w[0, 0, 0, 0] = 1.0
    critic = nn.Conv2d(1, 1, 2, bias=False)
    critic.weight.data.copy_(w)
    real, fake = torch.randn(3, 1, 2, 2), torch.randn(3, 1, 2, 2)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-10)
    critic.weight.data.mul_(3.0)
    penalty = gradient_penalty(critic, real, fake, weight=10.0)
    assert penalty.item() == pytest.approx(10.0 * (3.0 - 1.0) ** 2, rel=1e-5)
    penalty.backward()
    assert critic.weight.grad is not None and critic.weight.grad.abs().sum() > 0


def test_image_pool_returns_history_and_keeps_its_size():
    torch.manual_seed(0)
    pool = ImagePool(pool_size=3)
    first = torch.arange(3.0).view(3, 1, 1, 1)
    assert torch.equal(pool.query(first), first)  # filling: returned as given
    seen_old = False
    for step in range(20):
        batch = torch.full((2, 1, 1, 1), 100.0 + step)
        out = pool.query(batch)
        assert out.shape == batch.shape
        seen_old |= bool((out < 100 + step).any())
        assert len(pool.images) == 3
    assert seen_old
    assert ImagePool(0).query(first) is first


class _ConstantD(nn.Module):
    """D(x) = mean of x per sample as a 1×1 map, so losses are computable by hand."""

    def forward(self, x):
        return x.mean(dim=(1, 2, 3), keepdim=True)


def test_objective_halves_d_and_adds_weighted_l1():
    objective = Pix2PixObjective(gan_mode="lsgan", lambda_l1=100.0)
    a = torch.zeros(1, 3, 4, 4)
    b = torch.ones(1, 3, 4, 4)
    fake = torch.full((1, 3, 4, 4), 0.5)
    d = _ConstantD()
    loss_d, logs = objective.discriminator_loss(d, a, b, fake)
    # conditional input cat(a, b): mean 0.5 -> (0.5 - 1)^2; cat(a, fake): mean 0.25 -> 0.25^2
    assert logs["D_real"].item() == pytest.approx(0.25)
    assert logs["D_fake"].item() == pytest.approx(0.0625)
    assert loss_d.item() == pytest.approx(0.5 * (0.25 + 0.0625))
    loss_g, logs = objective.generator_loss(d, a, b, fake)
    assert logs["G_L1"].item() == pytest.approx(0.5)
    assert logs["G_GAN"].item() == pytest.approx((0.25 - 1) ** 2)
    assert loss_g.item() == pytest.approx(100 * 0.5 + (0.25 - 1) ** 2)


def test_objective_rows_of_the_paper():
    l1_only = Pix2PixObjective(lambda_gan=0.0)
    assert not l1_only.trains_discriminator
    a, b = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    loss, logs = l1_only.generator_loss(_ConstantD(), a, b, a)
    assert set(logs) == {"G_L1"} and loss.item() == pytest.approx(100.0)
    unconditional = Pix2PixObjective(conditional=False)
    assert unconditional.discriminator_input(a, b) is b
    with pytest.raises(ConfigError, match="loss.lambda_l1=-1"):
        Pix2PixObjective(lambda_l1=-1)


def test_wgangp_objective_adds_penalty():
    objective = Pix2PixObjective(gan_mode="wgangp", lambda_gp=10.0)
    d = nn.Conv2d(6, 1, 3)
    a, b = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    loss, logs = objective.discriminator_loss(d, a, b, torch.randn(2, 3, 8, 8))
    assert logs["D_GP"].item() > 0
    expected = 0.5 * (logs["D_real"] + logs["D_fake"]) + logs["D_GP"]
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_feature_matching_needs_features():
    objective = Pix2PixObjective(lambda_fm=10.0)
    a = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ConfigError, match="discriminator=multiscale"):
        objective.generator_loss(_ConstantD(), a, a, a)

    class TwoScale(nn.Module):
        def forward(self, x):
            return [[x * 2, x.mean(1, keepdim=True)], [x * 3, x.mean(1, keepdim=True)]]

    fake, real = torch.zeros(1, 3, 4, 4), torch.ones(1, 3, 4, 4)
    _, logs = Pix2PixObjective(lambda_fm=10.0, conditional=False).generator_loss(
        TwoScale(), a, real, fake
    )
    assert logs["G_FM"].item() == pytest.approx((2 + 3) / 2)


def test_cam_loss_is_bce_of_input_vs_target():
    objective = Pix2PixObjective(lambda_cam=1000.0)
    logit_in, logit_tgt = torch.tensor([[2.0]]), torch.tensor([[-1.0]])
    loss, logs = objective.cam_loss(logit_in, logit_tgt)
    expected = F.softplus(torch.tensor(-2.0)) + F.softplus(torch.tensor(-1.0))
    assert logs["G_CAM"].item() == pytest.approx(expected.item(), rel=1e-6)
    assert loss.item() == pytest.approx(1000 * expected.item(), rel=1e-6)
