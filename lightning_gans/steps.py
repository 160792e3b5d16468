"""Goodfellow et al.'s Algorithm 1 as one function, with every option of the stabilisation toolbox.

GAN, DCGAN, LSGAN, WGAN-GP, SNGAN and SAGAN differ in networks, loss and defaults, not in their step: they call
:func:`adversarial_step` from ``training_step``. Families with another algorithm (WGAN's clipping, ACGAN's class
loss, BiGAN's encoder, CycleGAN, ...) write their own step with the same hooks of
:class:`~lightning_gans.core.GANModule`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from torch import Tensor

from lightning_gans.losses import discriminator_loss, generator_loss

if TYPE_CHECKING:
    from lightning_gans.core import GANModule


def adversarial_step(module: GANModule, real: Tensor, labels: Tensor | None = None, *, loss: str) -> None:
    """One D update and, every ``n_critic`` D updates, one G update, on the batch ``real`` (and its ``labels``).

    D step: D(x) should score real, D(G(z)) fake, under ``loss`` with ``real_label`` smoothing, plus the
    switched-on penalties (gradient penalty, R1); both batches pass through ``d_input`` (DiffAugment, instance
    noise) and are scored separately (batch norm in D sees pure batches, as in DCGAN).
    G step: fresh z, G's loss on D(G(z)) plus feature matching when on. Conditional families pass ``labels``:
    the fakes of both steps use the same labels as the real batch.
    """
    opt_g, opt_d = module.optimizers()
    n = real.shape[0]

    with module.toggled_optimizer(opt_d):
        fake = module.generate(module.generator, module.noise(n), labels).detach()
        d_real = module.discriminate(module.d_input(real), labels)
        d_fake = module.discriminate(module.d_input(fake), labels)
        d_adv = discriminator_loss(loss, d_real, d_fake, real_label=module.real_label)
        penalties = module.discriminator_penalty(real, fake, labels)
        d_loss = d_adv + sum(penalties.values())
        opt_d.zero_grad(set_to_none=True)
        module.manual_backward(d_loss)
        opt_d.step()
    module.after_discriminator_step(d_loss=d_loss, **penalties)

    if module.should_step_generator():
        with module.toggled_optimizer(opt_g):
            fake = module.generate(module.generator, module.noise(n), labels)
            g_loss = generator_loss(loss, module.discriminate(module.d_input(fake), labels))
            extra = {}
            if module.feature_matching_weight > 0:
                extra["feature_matching"] = module.generator_feature_matching(real, fake, labels)
                g_loss = g_loss + extra["feature_matching"]
            opt_g.zero_grad(set_to_none=True)
            module.manual_backward(g_loss)
            opt_g.step()
        module.after_generator_step(g_loss=g_loss, **extra)
