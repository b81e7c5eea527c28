"""U-GAT-IT (Kim et al. 2020): CycleGAN's two-way set-up with attention generators, global and
local discriminators and U-GAT-IT's objective."""

from __future__ import annotations

from pix2pix_lit.losses import UGATITObjective
from pix2pix_lit.tasks.cyclegan import CycleGAN


class UGATIT(CycleGAN):
    """U-GAT-IT: G_{s→t} = ``generator_ab``, G_{t→s} = ``generator_ba`` (U-GAT-IT generators,
    ``model=ugatit`` or ``ugatit_light``), D_t = ``discriminator_b`` and D_s =
    ``discriminator_a`` (each a global + local :class:`~pix2pix_lit.networks.GlobalLocalDiscriminator`),
    trained on :class:`~pix2pix_lit.losses.UGATITObjective` (``loss=ugatit``), which adds the
    CAM loss of the generators' classifiers (:mod:`pix2pix_lit.losses.cam`).

    Per batch, as in the authors' code: one Adam step for both discriminators, then one for
    both generators, after which every ρ of AdaLIN and LIN is clipped to [0, 1]
    (:func:`~pix2pix_lit.networks.lin.clip_rho_after_steps`). The generators run once, before
    both steps: the authors' code recomputes the fakes for the generator step, after the
    discriminator step, which leaves G and F unchanged. Everything else (direction,
    validation, image grids with the generators' attention maps, checkpoints) is
    :class:`CycleGAN`'s.
    """

    update_order = ("D", "G")
    objective_type = UGATITObjective
