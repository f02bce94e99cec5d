"""Published numbers the chapters set their own measurements beside.

These are literature values, copied with their source, never measured here: a chapter prints
them next to its own numbers and says how its setting differs. Each row names the paper (or
the library's table) and the table it comes from.
"""
from __future__ import annotations

from typing import NamedTuple

import pandas as pd


class Published(NamedTuple):
    model: str  # as the source names it
    nll: float  # -log p(x) on the binarised MNIST test images, nats per image
    samples: int  # importance samples K of the estimate
    source: str  # authors, year, title, table
    cite: str  # the short form, for tables


BURDA_2016 = ("Burda, Grosse & Salakhutdinov (2016), Importance weighted autoencoders, "
              "ICLR, Table 1 (MNIST)")
PYTHAE_2022 = ("Chadebec, Vincent & Allassonnière (2022), Pythae: unifying generative "
               "autoencoders in Python (a benchmarking use case), NeurIPS Datasets and "
               "Benchmarks; the library's reproducibility table, which reproduces the VAE of "
               "Rezende & Mohamed (2015), reported there as 89.9")

# Test NLL of VAEs on binarised MNIST. Burda et al. train with dynamic binarisation and k
# samples per training step (k = 1 is the VAE's loss), and estimate -log p(x) with K = 5,000
# importance samples; their one-layer models have 50 latent units and train for 3,280 epochs.
MNIST_NLL = (
    Published("VAE (pythae's reproduction)", 89.78, 200, PYTHAE_2022,
              "Chadebec et al. (2022), pythae"),
    *(Published(model, nll, 5000, BURDA_2016, "Burda et al. (2016), Table 1")
      for model, nll in [("VAE, 1 stochastic layer, k = 1", 86.76),
                         ("VAE, 1 stochastic layer, k = 50", 86.35),
                         ("IWAE, 1 stochastic layer, k = 50", 84.78),
                         ("VAE, 2 stochastic layers, k = 1", 85.33),
                         ("IWAE, 2 stochastic layers, k = 50", 82.90)]),
)


def published_table(rows=MNIST_NLL) -> pd.DataFrame:
    """The published rows as a table: model, -log p(x) (nats per image), K, source."""
    return pd.DataFrame([{"model": r.model, "nats per image": r.nll, "K": r.samples,
                          "source": r.cite} for r in rows])
