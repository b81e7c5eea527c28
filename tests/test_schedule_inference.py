"""The paper's LR schedule and the test-time protocols."""

import pytest
import torch
from torch import nn

from pix2pix_lit.errors import ConfigError
from pix2pix_lit.inference import inference_protocol
from pix2pix_lit.schedulers import linear_decay


def test_linear_decay_follows_the_reference_rule():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2e-4)
    scheduler = linear_decay(opt, n_epochs=3, n_epochs_decay=4)
    lrs = []
    for _ in range(7):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    assert lrs[:3] == pytest.approx([2e-4] * 3)
    assert lrs[3:] == pytest.approx([2e-4 * (1 - k / 5) for k in (1, 2, 3, 4)])


def test_linear_decay_state_survives_a_round_trip():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = linear_decay(opt, n_epochs=1, n_epochs_decay=9)
    for _ in range(4):
        opt.step()
        scheduler.step()
    state = scheduler.state_dict()
    assert state["lr_lambdas"][0] == {"n_epochs": 1, "n_epochs_decay": 9}
    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    resumed = linear_decay(opt2, n_epochs=100, n_epochs_decay=100)
    resumed.load_state_dict(state)
    opt2.step()
    resumed.step()
    opt.step()
    scheduler.step()
    assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])


def test_negative_epochs_name_the_key():
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ConfigError, match="scheduler.n_epochs=-1"):
        linear_decay(opt, n_epochs=-1)


def _net() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(3, 4, 1), nn.BatchNorm2d(4), nn.Dropout(0.5))


def test_paper_mode_uses_batch_statistics_and_dropout_without_touching_running_stats():
    torch.manual_seed(0)
    net = _net()
    net[1].running_mean.fill_(5.0)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(2, 3, 8, 8) * 3 + 1
    with inference_protocol(net, "paper"):
        out = net[1](net[0](x))
        assert net.training
        # batch statistics: per-channel mean ~0 after normalisation
        assert out.mean(dim=(0, 2, 3)).abs().max() < 1e-5
        dropped = net(x)
        assert (dropped == 0).float().mean() > 0.2
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert net.training and net[1].track_running_stats


def test_standard_mode_is_eval_and_restores_training_flags():
    net = _net()
    net.train()
    with inference_protocol(net, "standard"):
        assert not net.training
        x = torch.randn(2, 3, 8, 8)
        assert torch.equal(net(x), net(x))
    assert net.training


def test_unknown_inference_mode():
    with (
        pytest.raises(ConfigError, match="inference='test'.*paper, standard"),
        inference_protocol(_net(), "test"),
    ):
        pass
