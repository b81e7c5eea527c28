"""U-GAT-IT's LIN and AdaLIN: initial values, the instance/layer-norm mix, clipping rho."""

import torch
import torch.nn.functional as F

from pix2pix_lit.networks import LIN, AdaLIN, UGATITGenerator, clip_rho_


def test_lin_initial_values() -> None:
    assert torch.all(AdaLIN(4).rho == 0.9)
    lin = LIN(4)
    assert torch.all(lin.rho == 0) and torch.all(lin.gamma == 1) and torch.all(lin.beta == 0)


def test_adalin_interpolates_instance_and_layer_norm() -> None:
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    norm = AdaLIN(4)
    gamma, beta = torch.ones(2, 4), torch.zeros(2, 4)
    with torch.no_grad():
        norm.rho.fill_(1.0)
        torch.testing.assert_close(norm(x, gamma, beta), F.instance_norm(x))
        norm.rho.fill_(0.0)
        torch.testing.assert_close(norm(x, gamma, beta), F.layer_norm(x, x.shape[1:]))
        torch.testing.assert_close(
            norm(x, 2 * gamma, beta + 1), 2 * F.layer_norm(x, x.shape[1:]) + 1
        )


def test_clip_rho_puts_rho_back_into_unit_interval() -> None:
    net = UGATITGenerator(ngf=8, n_blocks=1, img_size=16, light=True)
    rhos = [m.rho for m in net.modules() if isinstance(m, AdaLIN | LIN)]
    assert len(rhos) == 4
    with torch.no_grad():
        rhos[0].fill_(-0.5)
        rhos[1].fill_(1.7)
        rhos[2].fill_(0.3)
    net.clip_rho()
    assert torch.all(rhos[0] == 0) and torch.all(rhos[1] == 1) and torch.all(rhos[2] == 0.3)
    with torch.no_grad():
        rhos[3].fill_(2.0)
    clip_rho_(net)
    assert torch.all(rhos[3] == 1)
