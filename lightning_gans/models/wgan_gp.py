"""WGAN-GP: Gulrajani et al. 2017, "Improved Training of Wasserstein GANs" (arXiv:1704.00028).

WGAN with the weight clipping replaced by a gradient penalty: the critic's loss is
E[f(G(z))] - E[f(x)] + lambda E[(||grad f(x_hat)||_2 - 1)^2], x_hat uniformly between a real and a generated sample.
``training_step`` is the paper's Algorithm 1, numbered like it: n_critic critic steps, each with its own batch, real
and generated samples, the interpolate x_hat and the penalty, then one generator step. The paper's defaults are
this family's: lambda = 10 (``toolbox.gradient_penalty``, the toolbox's penalty that other families can switch on),
n_critic = 5, Adam with lr 1e-4 and betas (0, 0.9). The penalty is logged as ``train/gp`` (weighted, as every
toolbox penalty) and the critic's estimate of the distance as ``train/wasserstein``.
ADA (``ada``, :class:`lightning_gans.adaptive.Ada`) is accepted too: every critic input goes through it and
sign(f(x)) on the reals steers its p; a critic's outputs have no fixed zero (its loss ignores a constant offset), so
that heuristic is a rough one here and a fixed ``ada.p`` may suit a critic better.

The penalty is per sample, so the critic has **no batch norm** (the paper: "we omit batch normalization in the
critic"): DCGAN networks with a norm-free critic, as the official MNIST script (igul222/improved_wgan_training,
``gan_mnist.py``) uses. Deviations: that script uses betas (0.5, 0.9) and no batch norm in G either; the paper's
CIFAR ResNet critic uses layer normalisation, which the DCGAN critic does not offer (it has batch norm or none),
so this critic has none.
"""

from __future__ import annotations

from typing import Any

from lightning_gans.adaptive import Ada
from lightning_gans.core import GANModule
from lightning_gans.ema import ema_copy
from lightning_gans.losses import check_real_label, discriminator_loss, generator_loss
from lightning_gans.networks.dcgan import DCGANDiscriminator, DCGANGenerator
from lightning_gans.optim import check_adversarial_options, make_optimizers
from lightning_gans.renames import accepts_renamed
from lightning_gans.toolbox import Toolbox

#: WGAN-GP's toolbox: the paper's gradient penalty, lambda = 10; everything else off.
WGAN_GP_TOOLBOX = Toolbox(gradient_penalty=10.0)


@accepts_renamed  # lambda_gp became toolbox.gradient_penalty in 0.2.0 (lightning_gans.renames)
class WGANGP(GANModule):
    """Wasserstein GAN with gradient penalty.

    Args:
        latent_dim: size of the noise vector z.
        g_channels: channels of G's last hidden layer (ngf).
        d_channels: channels of the critic's first layer (ndf).
        n_critic: critic steps per generator step (paper: 5).
        optimizer_g: generator optimizer (paper: adam).
        optimizer_d: critic optimizer (paper: adam).
        lr_g: generator learning rate (paper: 1e-4).
        lr_d: critic learning rate (paper: 1e-4).
        betas: Adam's betas for both networks (paper: (0, 0.9)).
        ema_decay: decay of the EMA copy of G used for sampling and evaluation (0 = off).
        toolbox: the gradient penalty's lambda, ``gradient_penalty`` (paper: 10; must be positive), and further
            stabilisation options (DiffAugment, instance noise, feature matching, R1, spectral norm; the critic has no
            target to smooth); see :class:`lightning_gans.toolbox.Toolbox`.
        ada: adaptive discriminator augmentation (ADA), off by default; see :class:`lightning_gans.adaptive.Ada`.
        image_shape: (C, H, W) of the images; linked from the datamodule.
        num_classes: classes of the data (unused by this unconditional family); linked from the datamodule.
        num_grid_samples: images in the fixed-noise sample grid.
    """

    def __init__(
        self,
        *,
        latent_dim: int = 100,
        g_channels: int = 64,
        d_channels: int = 64,
        n_critic: int = 5,
        optimizer_g: str = "adam",
        optimizer_d: str = "adam",
        lr_g: float = 1e-4,
        lr_d: float = 1e-4,
        betas: tuple[float, float] = (0.0, 0.9),
        ema_decay: float = 0.0,
        toolbox: Toolbox = WGAN_GP_TOOLBOX,
        ada: Ada | None = None,
        image_shape: tuple[int, int, int] = (1, 28, 28),
        num_classes: int = 0,
        num_grid_samples: int = 64,
    ) -> None:
        super().__init__(
            image_shape=image_shape, num_classes=num_classes, latent_dim=latent_dim, num_grid_samples=num_grid_samples
        )
        self.save_hyperparameters()
        self.toolbox = Toolbox.of(toolbox, default=WGAN_GP_TOOLBOX).check_for(self.image_shape)
        self.ada = Ada.of(ada).build(self.image_shape, self.toolbox.diffaugment)  # None when off
        check_adversarial_options(self.hparams)
        check_real_label("wasserstein", self.toolbox.real_label)
        if self.toolbox.gradient_penalty <= 0:
            raise ValueError(
                "WGAN-GP needs a gradient penalty: toolbox.gradient_penalty must be positive (the paper uses 10); "
                "without it this is WGAN without weight clipping (use lightning_gans.models.WGAN for clipping)"
            )
        self.n_critic = n_critic
        self.generator = DCGANGenerator(latent_dim, self.image_shape, g_channels)
        # "We omit batch normalization in the critic": the penalty is per sample.
        self.discriminator = DCGANDiscriminator(self.image_shape, d_channels, batch_norm=False)
        self.toolbox.apply_spectral_norm(self.generator, self.discriminator)
        self.generator_ema = ema_copy(self.generator, ema_decay)

    def configure_optimizers(self):
        return make_optimizers(self.generator, self.discriminator, self.hparams)

    def training_step(self, batch: Any, batch_idx: int) -> None:
        # Algorithm 1 of the paper; the numbers are its line numbers. Each call is one pass of the inner loop (2-10)
        # on its own batch; every n_critic-th call also runs the generator update (11-12).
        real = batch[0] if isinstance(batch, (tuple, list)) else batch  # (4) real data x ~ P_r
        n, tb = real.shape[0], self.toolbox
        opt_g, opt_d = self.optimizers()

        def critic(x, **kwargs):  # D_w on any sample, through ADA, DiffAugment and instance noise when on
            return self.discriminator(tb.d_input(x, self.g_steps, self.ada), **kwargs)

        with self.toggled_optimizer(opt_d):
            fake = self.generator(self.noise(n)).detach()  # (4-5) z ~ p(z), x~ <- G(z)
            real_logits = critic(real)
            d_wasserstein = discriminator_loss("wasserstein", real_logits, critic(fake))  # (7) D(x~) - D(x)
            # (6-7) x^ <- eps x + (1 - eps) x~; gp = lambda (||grad D(x^)||_2 - 1)^2, lambda = toolbox.gradient_penalty;
            # with R1 too when it is switched on (not in the paper)
            penalties = tb.penalties(critic, real, fake)
            d_loss = d_wasserstein + sum(penalties.values())  # (7) L, averaged over the batch
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_loss)
            opt_d.step()  # (9) w <- Adam(grad_w L, w, alpha, beta1, beta2)
        ada = {"ada_p": self.ada.p, "ada_r_t": self.ada.r_t} if self.ada is not None else {}  # p of this step
        self.count_d_step(d_loss=d_loss, wasserstein=-d_wasserstein, **penalties, **ada)
        if self.ada is not None:  # ADA: sign(D(real)) to the controller; every `interval` D steps p moves
            self.ada.observe(real_logits)
            self.ada.adjust(self.d_steps, n * self.trainer.world_size)

        # (11-12) After n_critic critic steps: z ~ p(z), theta <- Adam(grad_theta -D(G(z)), theta, alpha, beta1, beta2).
        if self.d_steps % self.n_critic == 0:
            with self.toggled_optimizer(opt_g):
                fake = self.generator(self.noise(n))
                g_loss = generator_loss("wasserstein", critic(fake))
                extra = tb.feature_matching_terms(critic, real, fake)
                g_loss = g_loss + sum(extra.values())
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            if self.generator_ema is not None:
                self.generator_ema.update(self.generator)
            self.count_g_step(g_loss=g_loss, **extra)
