"""labkit: the course kit for "Unsupervised learning with variational autoencoders".

One module per concern:

- ``labkit.data``      MNIST loading (verified, cached) and minibatches
- ``labkit.models``    reference PCA, probabilistic PCA, nonlinear model and VAE
- ``labkit.train``     one training loop for every gradient-trained model
- ``labkit.metrics``   the numbers models are compared by (squared errors, means per digit)
- ``labkit.plotting``  the figures of the lab
- ``labkit.cli``       the ``labkit`` command
"""
__version__ = "0.1.0"
