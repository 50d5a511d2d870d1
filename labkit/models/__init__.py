"""Reference models of the lab, one file each: PCA, probabilistic PCA, the nonlinear model and the VAE.

Tensors in, tensors out; rows are images of D = 784 pixels, latents have M dimensions.
"""
from labkit.models.nonlinear import NonlinearModel
from labkit.models.pca import PCA
from labkit.models.ppca import PPCA
from labkit.models.vae import VAE, kl_to_standard_normal_logvar

__all__ = ["PCA", "PPCA", "NonlinearModel", "VAE", "kl_to_standard_normal_logvar"]
