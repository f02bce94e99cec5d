"""latent-notes: the package behind the book (every model, loader, training loop, metric, plot).

**One interface for every model family.** The autoencoder (``models.autoencoder``), the VAE
(``models.vae``) and VQ-VAE-2 (``models.vqvae2``) are ``torch.nn.Module`` s with the same verbs:

- ``encode(x) -> codes``: images (B, C, H, W) in [0, 1] → the tensor (B, D) that probes,
  traversals and interpolations read (the AE's code; the VAE's posterior mean μ; VQ-VAE-2's
  two quantised maps, flattened);
- ``decode(codes) -> images``: the inverse direction, for any codes of that shape (blended,
  perturbed or drawn);
- ``reconstruct(x)``: ``decode(encode(x))`` in effect;
- ``sample(n, *, seed, labels=None)``: n new images from the model's own idea of the codes (the
  AE: a Gaussian fitted to its training codes; the VAE: its prior N(0, I); VQ-VAE-2: its two
  PixelCNN priors, given by ``attach_priors``, class-conditional when they were trained so).

What a family can do beyond that stays on the model: ``VAE.posterior(x)`` (μ and log σ²),
``VQVAE2.quantise(x)`` (code grids), ``decode_code`` and ``edit_code``.

**Training** (``families``): each model module ends with its ``FAMILY`` (``models.family``:
config, builder, loss with its weights on the config, its chapter's defaults, its names), and
one ``families.train(family, data, model_config, train_config, *, run)`` trains any of them,
where ``run`` (``store.cache.Run``: the seed, the device and the store, made by
``book.notebook.start_chapter``) says how and where; ``family.recipe(data, epochs=...,
**options)`` makes the two configs. The model is loaded from the checkpoint cache (or fetched
from the weights source) when it was trained before. ``families.FAMILIES`` is the registry the
comparison chapter loops over.

**Layout**: the folders tell where a change goes.

- ``checks``: the parameter checks shared by everything; ``data``: the data sets;
  ``training``: the one training loop (with per-epoch callbacks); ``families``: ``train``
  for every family, the judge, the priors, and the registry.
- ``models/``: blocks, configs, models and losses, one module per family, each ending with its
  ``FAMILY``; ``family``: the ``Family`` record and the ``TrainConfig`` recipe (the checkpoint
  key hashes the model code only, not these recipes).
- ``store/``: where trained models live: ``checkpoint`` (the file format and the builder table),
  ``cache`` (the ``Store`` of checkpoints and experiment tables, and ``Run``), ``tables`` (the
  table file: CSV), ``weights`` (the ``Source`` of published models, and their export).
- ``experiments/``: what the chapters measure and draw: ``latent`` (traversals, interpolation),
  ``probes`` (the one probe protocol), ``efficiency`` (the label-efficiency curve),
  ``rates`` (what a code costs in bits), ``published`` (the literature's numbers, with their
  sources), ``vae_experiments`` (chapter 3's), ``vq_experiments`` (chapter 4's code
  traversal), ``diagrams`` (architecture figures drawn from the models), ``mechanisms``
  (chapter 4's masks, blind spot and quantiser figures), ``compare``, ``metrics``, ``plots``.
- ``book/``: the book's machinery: ``build`` (the build, and the Sphinx extension),
  ``notebook`` (a chapter's start-up; ``record``: a number into the results table and the
  text; ``show_source``: the package's code on the page), ``parameters`` (each chapter's own
  parameters, checked), ``results`` (the results tables).
"""
