"""Generative models: VAE, GANs (DCGAN, conditional, WGAN-GP), DDPM diffusion and PixelCNN, trained on the
shared engine; sampling, latent interpolation and scoring."""
