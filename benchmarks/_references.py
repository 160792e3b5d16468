"""What the benchmarks compare the families against, on a DCGAN's networks, optimizers and non-saturating step: a
plain PyTorch step, and a bare LightningModule with manual optimisation, two ``self.log`` calls and nothing else
(no loss watch, counters or callbacks)."""

from __future__ import annotations


def bare_module(model, latent_dim: int):
    """A bare LightningModule with ``model``'s generator, discriminator and ``configure_optimizers`` (G's first)."""
    import lightning as L
    import torch

    from lightning_gans.losses import discriminator_loss, generator_loss

    class Bare(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.automatic_optimization = False
            self.generator, self.discriminator = model.generator, model.discriminator

        def training_step(self, batch, batch_idx):
            real, opt_g, opt_d = batch[0], *self.optimizers()
            with self.toggled_optimizer(opt_d):
                fake = self.generator(torch.randn(len(real), latent_dim, device=self.device)).detach()
                d_loss = discriminator_loss("nonsaturating", self.discriminator(real), self.discriminator(fake))
                opt_d.zero_grad(set_to_none=True)
                self.manual_backward(d_loss)
                opt_d.step()
            with self.toggled_optimizer(opt_g):
                fake = self.generator(torch.randn(len(real), latent_dim, device=self.device))
                g_loss = generator_loss("nonsaturating", self.discriminator(fake))
                opt_g.zero_grad(set_to_none=True)
                self.manual_backward(g_loss)
                opt_g.step()
            self.log("train/d_loss", d_loss.detach(), prog_bar=True)
            self.log("train/g_loss", g_loss.detach(), prog_bar=True)

        def configure_optimizers(self):
            return model.configure_optimizers()

    return Bare()


def plain_step(model, latent_dim: int, device, autocast: bool):
    """``step(real)``: one D and one G update of ``model``'s networks in plain PyTorch (no Lightning)."""
    import torch

    from lightning_gans.losses import discriminator_loss, generator_loss

    G, D = model.generator.to(device), model.discriminator.to(device)
    opt_g, opt_d = model.configure_optimizers()

    def step(real):
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            fake = G(torch.randn(len(real), latent_dim, device=device)).detach()
            d_loss = discriminator_loss("nonsaturating", D(real), D(fake))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        D.requires_grad_(False)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=autocast):
            g_loss = generator_loss("nonsaturating", D(G(torch.randn(len(real), latent_dim, device=device))))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        D.requires_grad_(True)

    return step
