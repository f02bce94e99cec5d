# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 4. VQ-VAE-2: discrete latent grids and an autoregressive prior
#
# The autoencoders so far squeeze an image into one short vector of real numbers, and the VAE
# charges, through its KL term, at least a nat for every nat of information those numbers
# carry about the image: with a few numbers for the whole image, both lose fine detail.
# VQ-VAE {cite:p}`oord2017neural` keeps a **grid** of latents instead, one per image region,
# and each latent is not a real vector but a choice among $K$ learnt vectors, a *code* from a
# *codebook*. An image becomes a small grid of
# integers, like a tiny picture painted with $K$ colours, and the decoder turns that picture
# back into pixels. VQ-VAE-2 {cite:p}`razavi2019generating` stacks two such grids: a coarse
# top grid meant for the global shape and a finer bottom grid meant for the details (whether
# a run learns that split is measured below). Being discrete does not add
# information, it caps it: a position holds at most $\log_2 K$ bits, a $G \times G$ grid at
# most $G^2 \log_2 K$. What the grid gains is room (many positions, one per region) and no
# KL price on what they carry; chapter 5 sets the sizes side by side.
#
# A grid of integers has no Gaussian to sample from, so generation needs a second model: an
# autoregressive **prior** that learns which code grids occur, one position at a time. We use
# the gated PixelCNN {cite:p}`oord2016conditional`.
#
# **What you will learn:** what a grid of discrete codes can hold, how a codebook is learnt
# (straight-through gradients, the commitment loss, moving averages, restarts of dead codes),
# why two levels, and how a PixelCNN over codes turns the autoencoder into a generator.
#
# *This page was executed on {glue:text}`page_run`.*
#
# ```{glue:figure} lead_figure
# :name: fig-lead-04
#
# VQ-VAE-2's two levels, drawn from the model itself: two encoders, two quantisers with their
# codebooks, one decoder (the section *Two levels: the data flow* reads it).
# ```
#
# :::{admonition} Running this chapter, and its parameters
# :class: dropdown
#
# **Running this chapter.** {glue:text}`run_cost`. Trained models can be fetched instead of
# trained: the published edition's models are downloaded and checked with
# `-p weights auto` (papermill) or `-p weights=auto` (the book's build), and by default in
# Colab.
#
# **Parameters.** The folded cells below (click to open them) hold the chapter's imports
# and parameters: the quick profile's values, then, in papermill's injected cell, the values
# this page was executed with. The standard and full profiles override some of them, and so
# can you: `papermill -p NAME VALUE`, or `-p 04.NAME=VALUE` on the book's build. The
# cell after them checks them (a wrong value is named with its fix), seeds every random
# generator, picks the device and loads the data.
# :::

# %% tags=["remove-cell"]
# Colab, or any Python where the package is missing: install it from the repository.
try:
    import latent_notes  # noqa: F401
except ImportError:
    import subprocess
    import sys

    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "git+https://github.com/latent-notes/latent-notes"])

# %% tags=["hide-input"]
import math

import pandas as pd
import torch
from latent_notes import families
from latent_notes.book import explorers, runtimes, sentences
from latent_notes.book.notebook import glue, lead_figure, show_source, start_chapter
from latent_notes.book.parameters import VQVAE2Parameters
from latent_notes.data import load_data, one_per_class
from latent_notes.experiments import diagrams, latent, mechanisms, plots
from latent_notes.experiments import vq_experiments as vq_experiments
from latent_notes.experiments.metrics import predict, reconstruction_scores
from latent_notes.families import CodeData, train_priors
from latent_notes.models.common import batched
from latent_notes.models.pixelcnn import (
    GatedLayer,
    PixelCNN,
    bits_per_code,
    prior_config,
)
from latent_notes.models.quantise import VectorQuantiserEMA
from latent_notes.models.vqvae2 import VQVAE2, codebook_stats

# %% tags=["parameters", "hide-input"]
dataset = "mnist5k"  # mnist5k | digits | mnist | fashion-mnist | cifar10 | folder:PATH
data_root = None  # the data sets' folder (None: $LATENT_NOTES_DATA, else ./data)
epochs = 3  # passes over the training images for each VQ-VAE-2
subset = None  # cap on the number of training images (None: all of them)
seed = 0  # same seed, same numbers (on the CPU)
device = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
deterministic = False  # True: bit-for-bit repeatable on CUDA (slower)
precision = "float32"  # of the training steps: float32 | bfloat16 | auto
results_dir = "results"  # this chapter writes <results_dir>/04_vqvae2.csv
cache_dir = None  # checkpoints (None: $LATENT_NOTES_CACHE, else ~/.cache)
weights = None  # fetch trained models: auto | off | URL | folder (None: see README)
batch_size = 64  # images per gradient step
lr = 1e-3  # Adam learning rate of the VQ-VAE-2
width = 64  # conv channels of the encoders and decoders
embed_dim = 32  # length D of a codebook vector
codebook_size_top = 64  # codes in the top codebook
codebook_size_bottom = 128  # codes in the bottom codebook
commitment_weight = 0.25  # β_c, the weight of the commitment loss
prior_epochs = 5  # passes over the training codes for each PixelCNN prior
prior_channels = 32  # width of the PixelCNN stacks
prior_layers = 5  # gated layers of each PixelCNN
prior_label_dropout = 0.1  # share of training labels the priors see as no label
temperature = 1.0  # sampling temperature of the priors (< 1: safer, less varied)
samples_per_class = 8  # class-conditional samples shown per class
judged_per_class = 20  # samples per class judged (at least samples_per_class)
judge_epochs = 3  # chapter 1's judge recipe (epochs, batch_size, lr): same recipe,
judge_batch_size = 16  # gives the same cache key, so chapter 1's judge is loaded
judge_lr = 5e-3  # (or, when chapter 1 has not run, exactly that judge is trained)
colour_dataset = "photos"  # the colour run: photos (bundled) | cifar10 | folder:PATH
colour_subset = None  # cap on the colour training images (None: all of them)
colour_epochs = 10  # passes for the colour VQ-VAE-2 (its priors use prior_epochs)

# %% tags=["hide-input"]
chapter = start_chapter("04_vqvae2", dataset=dataset, data_root=data_root,
                        epochs=epochs, subset=subset, seed=seed, device=device,
                        results_dir=results_dir, cache_dir=cache_dir, weights=weights,
                        deterministic=deterministic, precision=precision,
                        parameters=VQVAE2Parameters.of(globals()))
glue("run_cost", runtimes.cost_sentence("04_vqvae2"))
data, dev = chapter.data, chapter.device
vqvae2s = families.FAMILIES["vqvae2"]
settings = dict(width=width, embed_dim=embed_dim, codebook_size_top=codebook_size_top,
                codebook_size_bottom=codebook_size_bottom,
                commitment_weight=commitment_weight, batch_size=batch_size, lr=lr)
run = chapter.run  # the seed, the device and the store, for every training call
print(data, "on", dev)

# %% [markdown]
# ## The quantiser: from vectors to codes
#
# An encoder turns the image into a map of vectors $z \in \mathbb{R}^D$, one per region. The
# quantiser replaces each by its nearest codebook vector,
#
# $$ k = \arg\min_j \lVert z - e_j \rVert_2, \qquad z_q = e_k, $$
#
# and hands the decoder $z_q$. Van den Oord et al. train encoder, decoder and codebook with a
# loss of three terms (their eq. 3), written with $z_e = z$ for the encoder's output, $e = e_k$
# for the code it picked and $\mathrm{sg}$ for the stop-gradient (the identity on the way
# forward, zero on the way back):
#
# $$ \mathcal{L} = -\log p(x \mid z_q)
#    + \lVert \mathrm{sg}[z_e] - e \rVert^2
#    + \beta_c \lVert z_e - \mathrm{sg}[e] \rVert^2 . $$
#
# The first term is the reconstruction (here a mean squared error: the negative
# log-likelihood of a Gaussian decoder, up to constants); the second, the *codebook term*,
# moves the code towards the encoder output and leaves the encoder alone; the third, the
# *commitment term*, moves the encoder output towards its code. Three problems and their fixes
# {cite:p}`oord2017neural`:
#
# 1. **The arg-min has no gradient.** The *straight-through* estimator pretends the quantiser
#    is the identity on the way back: in code, `z_q = z + (e_k - z).detach()`. The forward
#    pass uses $e_k$, the backward pass copies the decoder's gradient onto $z$.
# 2. **The encoder may wander away from the codes.** The commitment term
#    $\beta_c \lVert z_e - \mathrm{sg}[e] \rVert^2$ ($\beta_c$ = {glue:text}`beta_c`) pulls each
#    $z$ towards the code it picked.
# 3. **The codebook must follow the encoder.** The codebook term would do it by gradient
#    descent. This book, like VQ-VAE-2 {cite:p}`razavi2019generating`, drops that term and
#    replaces it by an update outside the gradient (van den Oord et al.'s appendix A.1): each
#    code moves to the running mean of the vectors assigned to it, an exponential moving
#    average with decay $\gamma$ = {glue:text}`ema_decay`. With $n_k$ the number of vectors
#    assigned to code $k$ in a batch and $s_k$ their sum,
#
# $$ N_k \leftarrow \gamma N_k + (1-\gamma)\, n_k,
#    \qquad m_k \leftarrow \gamma m_k + (1-\gamma)\, s_k,
#    \qquad e_k = m_k / N_k . $$
#
#    This is k-means, one mini-batch at a time. The counts $N_k$ are *Laplace smoothed*,
#    $\tilde N_k = (N_k + \epsilon) / (N + K\epsilon) \cdot N$, so that a code that is rarely
#    picked never divides by almost zero.
#
# A code that no vector picks receives no update and is wasted: a **dead code**. We restart
# each code whose average count $N_k$ falls below one vector per batch on a randomly chosen
# encoder output of the current batch (as in Jukebox: {cite:t}`dhariwal2020jukebox`). The
# codebook's
# health is read from two numbers on the test images: **usage**, the fraction of the $K$ codes
# picked at least once, and **perplexity** $\exp(-\sum_k p_k \log p_k)$ with $p_k$ the share of
# code $k$, the number of equally used codes the histogram is worth.
#
# **Why straight-through works.** Write the quantiser's output as
# $z_q = z + \mathrm{sg}(e_k - z)$. Its value is $e_k$; its derivative with respect to $z$
# is the identity, because the stop-gradient term counts as a constant. So for a loss
# $\mathcal{L}(z_q)$ the encoder receives $\partial\mathcal{L}/\partial z :=
# \partial\mathcal{L}/\partial z_q$ evaluated at $e_k$: the decoder's wish for the code,
# applied to the vector that chose it. The estimate is biased (the true derivative of the
# arg-min is zero almost everywhere), and it is good when $z$ is close to $e_k$, which is
# what the commitment loss enforces.
#
# **Why the EMA update is k-means.** With $\gamma = 0$ the update sets
# $e_k = s_k / n_k$, the mean of the vectors assigned to code $k$ in the batch: one Lloyd step
# of k-means. With $\gamma$ close to 1 the sums and counts are averages over many batches,
# $m_k / N_k \approx \mathbb{E}[s_k] / \mathbb{E}[n_k]$, the mean of every vector the code
# has recently won. Laplace smoothing adds $\epsilon$ to each count and rescales the counts to
# keep their total $N$; for a used code it changes $N_k$ by a negligible amount, and it keeps
# the division finite for a code whose count has decayed towards zero.
#
# Here is the book's quantiser at work on two-dimensional vectors, so that all of it fits
# in one picture: the nearest code, the gradient copied through (the figure's code checks
# that the gradient arriving at $z$ equals the one sent back from $z_q$), and one EMA step.

# %%
demo = mechanisms.quantiser_demo()
mechanisms.quantiser_figure(demo);

# %% [markdown]
# The three mechanisms as the package runs them: the forward pass (nearest code, commitment
# loss, straight-through), the EMA update with Laplace smoothing, and the restart of dead
# codes.

# %%
show_source(VectorQuantiserEMA.forward, VectorQuantiserEMA._update,
            VectorQuantiserEMA._restart_dead)

# %% [markdown]
# Three lines carry the ideas of this section. `self.nearest(flat.detach())` picks each
# code without a gradient; `quantised = z + (quantised - z).detach()` is the
# straight-through estimator, $z + \mathrm{sg}(e_k - z)$; and the codebook changes only
# inside `_update`, which runs in training mode and under `torch.no_grad`, so the optimiser
# never touches it. The restart draws its candidates for every code and lets only the dead
# ones take them, so a GPU never has to report how many died.

# %% [markdown]
# ## Two levels: the data flow
#
# The bottom encoder halves the image twice; the top encoder halves the bottom map once more.
# The top map is quantised first. The *top decoder* brings the quantised top map back to the
# bottom resolution, and the bottom quantiser sees the bottom features **together with** what
# the top level already explains, so the bottom codes only need to add the details. The final
# decoder reads both levels.
#
# Both encoders together divide the side by {glue:text}`side_factor`, so an image's side must
# be a multiple of it. {glue:text}`padding_text` The figure is drawn from the model itself: one
# image passes through it and every block reports the shape it outputs; the orange boxes are
# the two quantisers, each with its codebook and the grid of codes it outputs.

# %%
untrained = VQVAE2(vqvae2s.configure(data, **vqvae2s.split(settings)[0]))
title = f"VQ-VAE-2 for {data.name}: bottom level (lower row), top level"
lead_figure(diagrams.draw(diagrams.architecture(untrained), title))

# %% [markdown]
# An image of {glue:text}`padded_size` pixels (after padding) becomes a
# {glue:text}`top_grid`×{glue:text}`top_grid` grid of top codes and a
# {glue:text}`bottom_grid`×{glue:text}`bottom_grid` grid of bottom codes. The loss is the
# three-term loss above at both levels, less the codebook terms that the moving averages
# replace: the mean squared reconstruction error plus the commitment terms of both levels,
# each a mean over its own elements (as the code computes it, so that $\beta_c$ means the
# same whatever the image size or the length $D$ of a code vector),
#
# $$ \begin{aligned}
#    \mathcal{L} = {}& \frac{1}{CHW} \lVert x - \hat x \rVert^2 \\
#    & + \beta_c \sum_{\ell \in \{top,\, bottom\}} \frac{1}{D\, G_\ell^2}
#      \lVert z_\ell - \mathrm{sg}(e_\ell) \rVert^2 , \end{aligned} $$
#
# averaged over the batch ($G_\ell$: the side of level $\ell$'s grid), and the codebooks
# move by their moving averages, outside the gradient, in place of the codebook terms.
#
# ## Training, with and without restarts of dead codes
#
# We train the same model twice: once with dead-code restarts (the model the rest of the
# chapter uses) and once without, and measure usage and perplexity of both codebooks on the
# test images after every epoch.

# %%
variants = {}
for label, restart in [("with restarts", True), ("without restarts", False)]:
    model_config, recipe = vqvae2s.recipe(data, epochs=epochs, restart=restart,
                                          **settings)
    variants[label] = families.train(vqvae2s, data, model_config, recipe, run=run)
for name, variant in variants.items():
    print(f"{name}: {variant.status}")
vqvae = variants["with restarts"]
model = vqvae.model
vqvae.history.round(4)

# %%
plots.training_curves({n: v.history for n, v in variants.items()},
                      metrics=("mse", "commitment"),
                      title="Reconstruction MSE and commitment loss per epoch "
                            "(dashed: train, solid: validation)", log_y=True)
plots.training_curves({n: v.history for n, v in variants.items()},
                      metrics=("usage_top", "usage_bottom", "perplexity_top",
                               "perplexity_bottom"),
                      title="Codebook usage (fraction of codes used) and perplexity on "
                            "the validation images, per epoch")
setting = {"with restarts": "", "without restarts": "no_restart"}
final = {}
for name, variant in variants.items():  # the final models, scored once on the test set
    stats = codebook_stats(variant.model, data.test.images, dev)
    mse = reconstruction_scores(variant.model, data.test.images, dev)["test_mse"]
    final[name] = {"mse": mse, **stats}
pd.DataFrame(final).T.round(4)  # on the test images

# %% [markdown]
# With restarts the model ends at a test MSE of {glue:text}`restart_mse:.4f` and uses
# {glue:text}`restart_usage_top:.0%` of the top codes and {glue:text}`restart_usage_bottom:.0%`
# of the bottom codes (perplexities {glue:text}`restart_perplexity_top:.1f` and
# {glue:text}`restart_perplexity_bottom:.1f`). Without restarts, usage is
# {glue:text}`norestart_usage_top:.0%` and {glue:text}`norestart_usage_bottom:.0%` and the MSE
# {glue:text}`norestart_mse:.4f`: restarts give a {glue:text}`restart_effect` error here.
# {glue:text}`usage_course` (The monitor reads the validation images.) The codebook starts
# as random vectors and the moving average only updates the codes that are picked: a code
# nobody picks stays where it is, and comes back only when a restart moves it or the encoder's
# outputs drift to it.

# %% [markdown]
# ## Reconstructions
#
# Each test image beside its reconstruction from the two code grids.

# %%
shown = data.test.images[:12]
recon = batched(model.reconstruct, shown, dev)
pairs = torch.stack([shown, recon], 1).flatten(0, 1)
plots.image_grid(pairs, 12, captions=["input", "VQ-VAE-2"] * 12,
                 title=f"Test images of {data.name} (left) and their reconstructions "
                       "(right)");

# %% [markdown]
# ## What the codes look like
#
# Draw each code grid as a picture with one colour per code index (the colours repeat: the
# palette has fewer colours than the codebook has codes). Each top code sits over a cell of
# {glue:text}`top_cell`×{glue:text}`top_cell` pixels of the padded image, each bottom code over
# one of {glue:text}`bottom_cell`×{glue:text}`bottom_cell`; what the codes of each level control
# is measured in the next section.

# %%
codes = CodeData.of(vqvae, data, dev)
test_codes = codes.test
plots.code_maps(shown[:8], test_codes.top[:8], test_codes.bottom[:8], codebook_size_top,
                codebook_size_bottom,
                captions=[data.classes[i] for i in data.test.labels[:8]],
                title="Test images and their code grids (colour = code index)");

# %% [markdown]
# ## What a single code controls
#
# Take one test image, fix every code of both grids but one position, put each of that
# level's codes there in turn (all {glue:text}`codebook_size_top` top codes, or all
# {glue:text}`codebook_size_bottom` bottom ones) and decode: one row of images per
# position. We do it at the {glue:text}`walk_positions` positions of each grid where the
# digit has the most ink. A top code sits over a cell of
# {glue:text}`top_cell`×{glue:text}`top_cell` pixels of the padded image, a bottom code over
# one of {glue:text}`bottom_cell`×{glue:text}`bottom_cell`; through the decoder's convolutions
# either can reach beyond its cell. A red frame marks the code the encoder chose.

# %%
judge = None  # chapter 1's classifier: it reads MNIST-like data (grey, ten classes)
if data.channels == 1 and len(data.classes) == 10:
    judge = families.judge(data, epochs=judge_epochs, batch_size=judge_batch_size,
                           lr=judge_lr, run=run)
index, walk_positions, config = 0, 3, model.config
image = data.test.images[index]
grids = {"top": test_codes.top[index], "bottom": test_codes.bottom[index]}
grids = {level: grid.to(dev) for level, grid in grids.items()}
walks, chosen, boxes = {}, {}, {}
for level, grid in grids.items():
    for where in vq_experiments.inked_positions(config, image, level, walk_positions):
        label = f"{level} {where}"
        walks[label] = vq_experiments.every_code(model, *grids.values(), level, where)
        chosen[label] = int(grid[where])
        boxes[label] = vq_experiments.code_box(config, where, level)
vq_experiments.traversal_figure(
    walks, 32, originals=chosen,
    title=f"One position through every code (test image {index}, a "
          f"{data.classes[int(data.test.labels[index])]})");

# %% [markdown]
# Where does each row act? The mean absolute change of its images from the unedited
# reconstruction, pixel by pixel, with the code's cell outlined:

# %%
unedited = vq_experiments.decoded(model, *grids.values())
vq_experiments.change_maps(walks, unedited, boxes,
                           title="Where one code acts: mean |change| over its codes");

# %% [markdown]
# One image can mislead, so we measure the same traversal on the first test image of every
# class: for each position, the share of the pixel change that falls inside the code's cell
# and, where the judge can read the images, the share of codes that make it read another
# class.

# %%
measured = one_per_class(data.test.labels, data.classes)
traversal = vq_experiments.code_traversal(model, data.test.images, test_codes, measured,
                                          walk_positions, dev,
                                          judge=judge.model if judge else None)
walk_summary = traversal.drop(columns=["image", "position"]).groupby("level").mean()
walk_summary

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
for level, row in walk_summary.iterrows():
    chapter.record_all("vqvae2", {f"code_{name}": value for name, value in row.items()},
                       setting=f"traversal,{level}")
cells = {level: config.padded_size // vq_experiments.grid_size(config, level)
         for level in ("top", "bottom")}
glue("codebook_size_top", codebook_size_top)
glue("codebook_size_bottom", codebook_size_bottom)
glue("walk_positions", walk_positions)
glue("walk_images", len(measured))
glue("top_cell", cells["top"])
glue("bottom_cell", cells["bottom"])
glue("walk_text", vq_experiments.traversal_sentence(walk_summary, cells))
glue("walk_inside_top", walk_summary.loc["top", "share_inside"])
glue("walk_inside_bottom", walk_summary.loc["bottom", "share_inside"])

# %% [markdown]
# {glue:text}`walk_text` (Measured on {glue:text}`walk_images` test images, one per class,
# at {glue:text}`walk_positions` positions per level each.) A code can only rewrite the
# region it covers plus the margin the decoder's convolutions spread it over, and how much it
# changes depends on how far the new code lies from the old one. The two levels are meant to
# divide the work, the top codes the coarse layout and the bottom codes the detail drawn on
# it {cite:p}`razavi2019generating`. Read together with the codebooks' usage and the bits a top
# code carries (as the top prior, trained below, scores the test codes without a label), the
# traversal gives this run's verdict. {glue:text}`levels_verdict` The two priors below follow the
# model's division whatever it
# learnt: the top prior models the top grid, the bottom prior the bottom grid given the top
# one.
#
# ## Interpolating quantised latents
#
# Between two images we can blend the quantised maps of both levels,
# $(1-t)\,E(a) + t\,E(b)$, and decode. The blend is no longer made of codes, but the decoder
# still reads it.

# %%
a_index = int((data.test.labels == data.test.labels[0]).nonzero()[0])
b_index = int((data.test.labels != data.test.labels[0]).nonzero()[0])
ends = batched(model.encode, data.test.images[[a_index, b_index]], dev)  # both VQ maps
path = latent.interpolate(model.decode, ends[0], ends[1], steps=9, device=dev)
plots.image_grid(path, 9,
                 captions=[f"t={t:.2f}" for t in torch.linspace(0, 1, 9).tolist()],
                 title="Decoding a linear path between the quantised latents of two "
                       "test images");

# %% [markdown]
# The code maps are spatial: a blend mixes the two images' maps position by position and
# moves nothing from one place to another, so look in the path for a cross-fade rather than a
# morph (chapter 5 measures how far such paths stray from real images). Between two codes
# of a codebook lies no other code, so there is no smooth, meaningful path of codes to walk
# as in a VAE's continuous space; generating new images needs a model of which grids are
# likely.
#
# ## Stage 2: a PixelCNN prior over codes
#
# Encode every training image to its pair of code grids and its label. The prior models
#
# $$ p(c_{top}, c_{bottom} \mid y) = p(c_{top} \mid y)\; p(c_{bottom} \mid c_{top}, y) , $$
#
# each grid factorised in raster order, $p(c) = \prod_i p(c_i \mid c_{<i})$, each factor a
# softmax over the codebook. A **gated PixelCNN** computes all these conditionals at once with
# *masked* convolutions. What an output can see, its **receptive field**, can fall short of
# the positions before it in two ways. A **blind spot** is a hole: an earlier position inside
# the field's outline (the smallest block of rows and columns holding every position the
# output sees) that it does not see. A plain stack of masked $3 \times 3$ convolutions has one:
# each layer reaches one row further up, but one column further right only on the rows above,
# so a triangle of positions above and to the right stays unseen however deep the stack. The
# gated PixelCNN splits the stack in two. A **vertical stack** sees, at each layer, the row
# above and its own row across all the kernel's columns (its own row too, so it must not feed
# row $i$ itself); a **horizontal stack** sees only the positions to the left in the current
# row. The vertical stack's output is **shifted down one row** before it is added to the
# horizontal stack: that shift is what makes the model causal (row $i$'s horizontal stack
# receives only rows $< i$). Together the two stacks leave no hole: their field is a filled
# block that grows by one row up and one column to each side per layer. But it is finite, and
# earlier positions farther away than the stack reaches lie **beyond the field**: no mask
# hides them, the stack is just not deep enough. Each layer uses the gated unit
# $\tanh(W_f * x + V_f h) \odot \sigma(W_g * x + V_g h)$ (eq. 4 of {cite:t}`oord2016conditional`),
# where $h$ is the condition: the class label for the top prior; the label and the top code
# grid (each top code repeated over the bottom positions it covers) for the bottom prior. The
# bottom prior gets the label too, in case the top codes leave the digit open; what the label
# still saves at each level is measured below. The loss is the negative log-likelihood in
# **bits per code**.
#
# **Why bits per code.** The chain rule of probability needs no assumption:
# $p(c) = p(c_1)\,p(c_2 \mid c_1) \cdots p(c_n \mid c_{<n})$ holds for any order of the $n$
# positions. A model of each factor therefore gives the exact log-likelihood,
# $-\log_2 p(c) = \sum_i -\log_2 p(c_i \mid c_{<i})$ bits, and by Shannon's source coding
# theorem an entropy coder driven by the model stores a grid in that many bits (plus at most
# two). The training loss, the cross-entropy averaged over positions and divided by $\ln 2$,
# is that length per code; $\log_2 K$ is the length of a code that carries no structure.
#
# The masks make each output see only earlier positions. Below, the 0/1 kernels of both
# designs; then their receptive fields, **measured**: the gradient of one output position with
# respect to every input position, through untrained stacks of the same depth (what a
# position can see is decided by the masks, not by the weights).

# %%
mechanisms.masks_figure(3);

# %% [markdown]
# Read each kernel as "which inputs may this output use". The plain design of the first
# PixelCNN {cite:p}`oord2016pixel` uses one kernel; its first layer
# (mask A) excludes the position itself, since the input there is the code being predicted;
# its later layers (mask B) include it, because after the first layer that position holds
# only information from before it. The gated design keeps two such kernels apart: a
# vertical one that covers the row above and the current one across all its columns, made
# causal by the one-row shift, and a horizontal one that covers the current row up to the
# position.

# %%
fields = mechanisms.receptive_fields(grid=15, layers=6)  # try other depths and grids
reach = mechanisms.field_counts(fields)  # per design: seen, blind spot, beyond the field
mechanisms.receptive_field_figure(fields);

# %% [markdown]
# {glue:text}`rf_text` In the figure, blue is what the output sees, red its blind spot and
# pale orange what lies beyond its field. (The package's tests check, for every output
# position, with and without conditioning, that nothing at or after it is seen, and that the
# gated field is a filled block for every depth and grid they try.)
#
# The same measure on this chapter's own priors, built from their configs (the grids of the
# VQ-VAE-2 above, `prior_layers` layers), at the last position of each grid, the one with
# every other position before it:

# %%
prior_options = dict(channels=prior_channels, layers=prior_layers,
                     label_dropout=prior_label_dropout)
prior_configs = {level: prior_config(untrained.config, level,
                                     num_classes=len(data.classes), **prior_options)
                 for level in ("top", "bottom")}
own_fields = {level: mechanisms.prior_field(
    config, f"{level} prior: {config.grid_size}×{config.grid_size} grid, "
            f"{config.layers} layers") for level, config in prior_configs.items()}
title = "What the last position of each prior depends on"
mechanisms.receptive_field_figure(*own_fields.values(), title=title);

# %% [markdown]
# {glue:text}`prior_field_text` More layers reach farther; VQ-VAE-2's own top prior also
# uses self-attention layers, whose field is the whole grid {cite:p}`razavi2019generating`.
#
# One gated layer, as the package runs it:

# %%
show_source(GatedLayer.forward, GatedLayer.horizontal_step)

# %% [markdown]
# The whole bottom prior, drawn from its config (the top prior is the same without the top
# codes as a condition):

# %%
bottom_prior = PixelCNN(prior_configs["bottom"])
diagrams.draw(diagrams.prior_diagram(bottom_prior),
              "The bottom prior: one distribution over the codebook per position",
              width=9);

# %% [markdown]
# Every position of the grid gets its own distribution over the
# {glue:text}`codebook_size_bottom` bottom codes, computed in one pass from the codes before
# it, the class label (or "no label") and the top codes above it. Training scores all of
# them at once; sampling has to go one position at a time, since each draw feeds the next.
#
# **Label dropout.** A prior that always sees the label learns $p(c \mid y)$ and nothing
# else: it cannot draw an image without being told the class. Chapter 5 compares VQ-VAE-2's
# samples with those of the AE and the VAE, which never see a label, so the priors must also
# generate without one. In training, each image's label is therefore hidden, with probability
# `prior_label_dropout` = {glue:text}`label_dropout`, behind one more learnt embedding, "no
# label" (as classifier-free guidance trains its models, replacing the label by a null token
# with some probability: {cite:t}`ho2022classifier`). The same
# network then learns $p(c_{top}, c_{bottom} \mid y)$ for each class and, through the "no
# label" embedding, $p(c_{top}, c_{bottom})$; we use it only to sample and to score without a
# label, not for guidance.

# %%
train_codes = codes.train
trained_priors = train_priors(vqvae, data, epochs=prior_epochs, codes=codes, run=run,
                              **prior_options)
priors = {"top | class": trained_priors["top"],
          "bottom | top, class": trained_priors["bottom"]}
model.attach_priors(trained_priors["top"].model, trained_priors["bottom"].model,
                    temperature)
for name, prior in priors.items():
    print(f"{name}: {prior.status}")
print("code grids:", tuple(train_codes.top.shape), tuple(train_codes.bottom.shape))
bits = {f"prior_nll_{level}":  # scored once on the test codes, after training
        families.score_on_test(families.PRIOR, prior, codes,
                               run=run)["test_bits_per_code"]
        for level, prior in trained_priors.items()}
chapter.record_all("vqvae2", bits)
free_bits = {f"prior_nll_{level}": bits_per_code(prior.model, codes.test, dev,
                                                 labelled=False)
             for level, prior in trained_priors.items()}  # given "no label"
chapter.record_all("vqvae2", free_bits, setting="no_label")
plots.training_curves({n: p.history for n, p in priors.items()},
                      metrics=("bits_per_code",),
                      title="PixelCNN priors: bits per code "
                            "(dashed: train, solid: validation)");

# %% [markdown]
# A code drawn uniformly from the codebook would cost $\log_2 K$ bits. The top prior is
# given the class, the bottom prior the top codes and the class. {glue:text}`prior_vs_uniform`
# Given "no label" instead, they need {glue:text}`free_bits_top:.2f` and
# {glue:text}`free_bits_bottom:.2f` bits per code: {glue:text}`label_worth`. What a prior saves
# below $\log_2 K$ is what it learnt of the structure of the code grids: which codes follow
# which.
#
# ## Sampling
#
# Generation is ancestral: draw the top grid from $p(c_{top} \mid y)$ one position at a time,
# then the bottom grid from $p(c_{bottom} \mid c_{top}, y)$, then decode. The temperature $T$
# divides the logits before each softmax; $T < 1$ favours likely codes (cleaner, less varied
# images), $T > 1$ the opposite. Each row below is one class asked for; the last row asks
# for none and gives the priors their "no label" embedding instead (more on it below).

# %%
n_judged = max(judged_per_class, samples_per_class)
asked = torch.arange(len(data.classes)).repeat_interleave(n_judged)
samples = model.sample(len(asked), seed=seed, labels=asked).cpu()
unlabelled = model.sample(len(asked), seed=seed,  # as many, without a label
                          labels=model.priors.top.no_label(len(asked))).cpu()
shown_samples = samples.unflatten(
    0, (len(data.classes), n_judged))[:, :samples_per_class]
shown_samples = torch.cat([shown_samples.flatten(0, 1),
                           unlabelled[:samples_per_class]])
plots.image_grid(shown_samples, samples_per_class,
                 row_labels=[*data.classes, "no label"],
                 title=f"Class-conditional samples (one row per class) and "
                       f"unconditional ones (last row), T = {temperature}");

# %% [markdown]
# Does each row show the class it was asked for? Chapter 1's classifier, the *judge*, answers
# for every sample (on MNIST-like data). It is exactly chapter 1's deep CNN: the same recipe
# (`judge_epochs`, `judge_batch_size`, `judge_lr`) gives the same checkpoint, loaded from the
# cache, or trained the same way when chapter 1 has not run.

# %%
agreement = None  # measured on MNIST-like data only: grey images of ten classes
if judge is not None:  # loaded for the code traversal above
    predicted = predict(judge.model, samples, dev).argmax(1)
    agreement = float((torch.as_tensor(predicted) == asked).float().mean())
    chapter.record("vqvae2", "sample_agreement", agreement)
    print(f"the judge reads the class asked for in {agreement:.1%} "
          f"of the {len(asked)} samples")

# %% [markdown]
# The judge {glue:text}`agreement_text`.
#
# **Without a label.** Unconditional samples give both priors the "no label" embedding in
# place of a class, so no label is drawn or asked for: the codes come from the priors'
# $p(c_{top}, c_{bottom})$, learnt from the training images whose label was hidden. This is
# an exact sample of that model at temperature 1 only. A temperature $T$ divides every logit
# by $T$ before the softmax, so the other rows below sample from sharpened ($T < 1$) or
# flattened ($T > 1$) conditionals, not from the model: lowering it trades variety for clean
# strokes.

# %%
n_free = samples_per_class * 2
temperatures = [0.7, temperature, 1.3]
no_label = model.priors.top.no_label(n_free)  # index num_classes: "no label"
free = [model.sample(n_free, seed=seed, labels=no_label, temperature=t).cpu()
        for t in temperatures]
plots.image_grid(torch.cat(free), n_free,
                 row_labels=[f"T = {t}" for t in temperatures],
                 title="Unconditional samples (no label) at three temperatures");

# %% [markdown]
# Which digits does the model draw when it is not told? The judge reads as many unconditional
# samples (at $T$ = {glue:text}`temperature`, those of the first grid's last row and more)
# as it read class-conditional ones, and the bars set the shares it finds beside the classes'
# shares in the training set.

# %%
coverage = None  # read by the judge: MNIST-like data only, as above
if agreement is not None:  # the unconditional samples of the first grid's last row
    read_as = torch.as_tensor(predict(judge.model, unlabelled, dev).argmax(1))
    k = len(data.classes)
    shares = torch.bincount(read_as, minlength=k).double() / len(read_as)
    coverage = {"judged": shares,
                "train": torch.bincount(data.train.labels, minlength=k).double()
                / len(data.train.labels)}
    for metric, number in [("classes_seen", int((shares > 0).sum())),
                           ("class_share_max", float(shares.max())),
                           ("class_share_min", float(shares.min()))]:
        chapter.record("vqvae2", metric, number, setting="unconditional")
    plots.class_shares(
        {f"unconditional samples, read by the judge ({len(read_as)})": shares,
         "training images (their labels)": coverage["train"]},
        data.classes, ylabel="share of the images",
        title="Classes of unconditional samples and of the training set");

# %% [markdown]
# The bars: for each class, the share of the unconditional samples the judge reads as that
# class, beside its share of the training images. {glue:text}`coverage_text` The judge can
# only name one of its ten classes, so a sample that looks like no digit still counts for
# one; the shares say which digits the model draws most, not how well.
#
# ### Try it: edit the codes, sample in the page
#
# The model and both priors run below in the page. The two tables are the code grids of a
# test digit (top, then bottom): click a cell, type another code, and the decoder redraws
# the image. Compare a bottom cell with a top cell: every top position is decoded over a
# block of bottom positions, so a top code reaches a larger region of the image.
# Under the image, sampling runs the two PixelCNN priors in the page exactly as above: every
# position of the top grid, then of the bottom grid, one network call per position, drawn
# at the temperature of the slider (the time it took is printed). Lower the temperature for
# cleaner digits, raise it for wilder ones; ask for "no label" to see what the priors draw
# unprompted.

# %%
explorers.vq_grid(model, data.test.images[0], data.classes, "04_vqvae2")

# %% [markdown]
# ## Colour images
#
# Nothing above is specific to digits: the same pipeline runs on colour images with
# three channels (here `colour_dataset`; the quick profile uses patches cut from the two
# sample photos bundled with scikit-learn, the full profile CIFAR-10).
# {glue:text}`colour_padding_text`

# %%
colour = load_data(colour_dataset, data_root=data_root, subset=colour_subset,
                   image_size=32, channels=3, seed=seed)
print(colour)
colour_vqvae = families.train(vqvae2s, colour,
                             *vqvae2s.recipe(colour, epochs=colour_epochs, **settings),
                             run=run)
colour_shown = colour.test.images[:10]
colour_recon = batched(colour_vqvae.model.reconstruct, colour_shown, dev)
plots.image_grid(torch.cat([colour_shown, colour_recon]), len(colour_shown),
                 row_labels=["input", "recon"],
                 title=f"{colour.name}: test images (top) and VQ-VAE-2 reconstructions "
                       "(bottom)")
colour_stats = codebook_stats(colour_vqvae.model, colour.test.images, dev)
colour_mse = reconstruction_scores(colour_vqvae.model, colour.test.images,
                                   dev)["test_mse"]
chapter.record("vqvae2", "test_mse", colour_mse, setting=f"colour:{colour.name}")
colour_priors = train_priors(colour_vqvae, colour, epochs=prior_epochs, run=run,
                             **prior_options)
colour_vqvae.model.attach_priors(colour_priors["top"].model,
                                 colour_priors["bottom"].model, temperature)
colour_asked = torch.arange(len(colour.classes)).repeat_interleave(samples_per_class)
colour_samples = colour_vqvae.model.sample(len(colour_asked), seed=seed,
                                           labels=colour_asked).cpu()
plots.image_grid(colour_samples, samples_per_class, row_labels=colour.classes,
                 title=f"{colour.name}: class-conditional samples (one row per class)");
colour_codes = CodeData.of(colour_vqvae, colour, dev)
colour_bits = chapter.record_all("vqvae2", {  # scored as the digits' priors were
    f"prior_nll_{level}": families.score_on_test(families.PRIOR, prior, colour_codes,
                                                 run=run)["test_bits_per_code"]
    for level, prior in colour_priors.items()}, setting=f"colour:{colour.name}")

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
glue("top_grid", untrained.config.top_grid)
glue("bottom_grid", untrained.config.bottom_grid)
glue("padded_size", untrained.config.padded_size)
glue("beta_c", commitment_weight)
glue("ema_decay", model.config.decay)
glue("side_factor", untrained.config.padded_size // untrained.config.top_grid)
glue("padding_text", sentences.padding_sentence(untrained.config.image_size,
                                                untrained.config.padded_size))
glue("colour_padding_text", sentences.padding_sentence(colour_vqvae.model.config.image_size,
                                                       colour_vqvae.model.config.padded_size))
course = variants["without restarts"].history  # validation usage, epoch by epoch
usage = {when: {level: float(course[f"val_usage_{level}"].iloc[row])
                for level in ("top", "bottom")}
         for when, row in (("first epoch", 0), ("last epoch", -1))}
for when, levels in usage.items():
    chapter.record_all("vqvae2", {f"val_usage_{level}": v for level, v in levels.items()},
                       setting=f"no_restart,{when}")
glue("usage_course", sentences.usage_course_sentence(usage["first epoch"],
                                                     usage["last epoch"]))
for name, scores in final.items():
    chapter.record_all("vqvae2", {"test_mse" if k == "mse" else
                                  f"codebook_{k}" if k.startswith("usage") else k: v
                                  for k, v in scores.items()}, setting=setting[name])
for name, key in (("with restarts", "restart"), ("without restarts", "norestart")):
    for column in ("mse", "usage_top", "usage_bottom", "perplexity_top",
                   "perplexity_bottom"):
        glue(f"{key}_{column}", final[name][column])  # the final model's, on test
glue("restart_effect", "lower" if final["with restarts"]["mse"]
     < final["without restarts"]["mse"] else "not lower")
glue("bits_top_class", bits["prior_nll_top"])
glue("bits_bottom", bits["prior_nll_bottom"])
glue("label_dropout", prior_label_dropout)
glue("free_bits_top", free_bits["prior_nll_top"])
glue("free_bits_bottom", free_bits["prior_nll_bottom"])
label_saves = {level: free_bits[f"prior_nll_{level}"] - bits[f"prior_nll_{level}"]
               for level in ("top", "bottom")}
glue("label_worth",
     f"the label saves {label_saves['top']:.2f} bits per top code and "
     f"{label_saves['bottom']:.2f} per bottom code, "
     f"{label_saves['top'] * untrained.config.top_grid ** 2:.1f} bits over a whole top grid"
     if min(label_saves.values()) > 0 else
     "on this run the label does not lower the cost at both levels "
     f"({label_saves['top']:+.2f} and {label_saves['bottom']:+.2f} bits per code without it)")
glue("temperature", temperature)
if coverage is None:
    coverage_text = ("The judge is only asked on MNIST-like data, so which classes the "
                     "unconditional samples show is not measured here.")
else:
    judged, train_share = coverage["judged"], coverage["train"]
    seen = int((judged > 0).sum())
    missing = [data.classes[i] for i in range(len(judged)) if judged[i] == 0]
    coverage_text = (
        (f"The judge reads all {len(judged)} classes among the {len(asked)} unconditional "
         "samples" if not missing else
         f"The judge reads only {seen} of the {len(judged)} classes among the {len(asked)} "
         f"unconditional samples (none read as {', '.join(missing)})")
        + f": the commonest, {data.classes[int(judged.argmax())]}, takes "
        f"{float(judged.max()):.0%} of them and the rarest, "
        f"{data.classes[int(judged.argmin())]}, {float(judged.min()):.0%}, where the "
        f"training set's shares run from {float(train_share.min()):.1%} to "
        f"{float(train_share.max()):.1%}.")
glue("coverage_text", coverage_text)
for design, name in (("plain", mechanisms.PLAIN), ("gated", mechanisms.GATED)):
    chapter.record_all("vqvae2", {f"field_{k}": v for k, v in
                                  {"grid": fields["grid"], "layers": fields["layers"],
                                   **reach[name]}.items()},
                       setting=f"receptive field,{design}")
glue("rf_text", sentences.receptive_field_sentence(reach[mechanisms.PLAIN],
                                                   reach[mechanisms.GATED],
                                                   fields["layers"], fields["grid"]))
own_reach = {level: mechanisms.prior_reach(config) for level, config in prior_configs.items()}
colour_reach = {level: mechanisms.prior_reach(prior.model.config)
                for level, prior in colour_priors.items()}
for suffix, reached in (("", own_reach), (f",colour:{colour.name}", colour_reach)):
    for level, counts in reached.items():
        chapter.record_all("vqvae2", {f"field_{k}": v for k, v in counts.items()},
                           setting=f"prior field,{level}{suffix}")
glue("prior_field_text", sentences.prior_field_sentence(own_reach))
glue("colour_field_text", sentences.prior_field_sentence(colour_reach, whose="colour"))
glue("levels_verdict", sentences.levels_verdict(
    float(final["with restarts"]["usage_top"]), float(final["with restarts"]["usage_bottom"]),
    float(free_bits["prior_nll_top"]), float(walk_summary.loc["top", "mean_change"]),
    float(walk_summary.loc["bottom", "mean_change"])))
uniform = {level: math.log2(size) for level, size in
           (("top", model.config.codebook_size_top),
            ("bottom", model.config.codebook_size_bottom))}
glue("prior_vs_uniform", sentences.bits_against(
    {level: bits[f"prior_nll_{level}"] for level in uniform}, uniform,
    "On the test codes the priors", "a code drawn uniformly"))
glue("colour_bits", sentences.bits_against(
    {level: colour_bits[f"prior_nll_{level}"] for level in uniform},
    {level: bits[f"prior_nll_{level}"] for level in uniform},
    "On its test codes the colour priors", f"the priors of {data.name}"))
glue("uniform_top", uniform["top"])
glue("uniform_bottom", uniform["bottom"])
glue("agreement_text",
     "is only asked on MNIST-like data, so the agreement is not measured here"
     if agreement is None else
     f"classifies {agreement:.0%} of the {len(asked)} samples as the class they were "
     "asked for")
glue("colour_name", colour.name)
glue("colour_mse", colour_mse)
glue("colour_usage_top", colour_stats["usage_top"])
glue("colour_usage_bottom", colour_stats["usage_bottom"])

# %% [markdown]
# On {glue:text}`colour_name` the colour model reaches a test MSE of
# {glue:text}`colour_mse:.4f` with {glue:text}`colour_usage_top:.0%` of its top codes and
# {glue:text}`colour_usage_bottom:.0%` of its bottom codes in use. {glue:text}`colour_bits`
# {glue:text}`colour_field_text` A prior that does not see the whole grid can draw texture that
# holds together locally and
# still no scene that holds together across the image; look for both in the samples above.
# VQ-VAE-2's large, attention-augmented priors narrow that gap on ImageNet, and even there the
# paper's best samples were picked by classifier-based rejection sampling: a pretrained
# classifier scores each sample, and the ones it finds unlikely for their class are thrown
# away {cite:p}`razavi2019generating`.

# %% [markdown]
# ## Summary
#
# - A vector quantiser maps each encoder vector to its nearest code; straight-through
#   gradients train the encoder, a commitment loss ($\beta_c$ = {glue:text}`beta_c`) keeps it near
#   the codes, and moving averages (decay {glue:text}`ema_decay`, Laplace-smoothed counts) move
#   the codebook in place of the codebook term of van den Oord et al.'s three-term loss.
# - Codes that fall out of use must be restarted: with restarts the model used
#   {glue:text}`restart_usage_top:.0%` / {glue:text}`restart_usage_bottom:.0%` of its top /
#   bottom codes, without them {glue:text}`norestart_usage_top:.0%` /
#   {glue:text}`norestart_usage_bottom:.0%`.
# - Two levels: a {glue:text}`top_grid`×{glue:text}`top_grid` top grid meant for the global
#   shape, a {glue:text}`bottom_grid`×{glue:text}`bottom_grid` bottom grid meant for the
#   details. {glue:text}`levels_verdict`
# - One code through all its values: {glue:text}`walk_inside_top:.0%` of a top code's pixel
#   change and {glue:text}`walk_inside_bottom:.0%` of a bottom code's stays inside its cell.
# - A gated PixelCNN per level turns the autoencoder into a generator
#   ({glue:text}`bits_top_class:.2f` and {glue:text}`bits_bottom:.2f` bits per code on the test
#   codes); sampling is sequential over positions and tuned by a temperature.
#   {glue:text}`prior_field_text`
# - Label dropout ({glue:text}`label_dropout:.0%` of the training labels hidden behind a "no
#   label" embedding) lets the same priors sample and score without a label
#   ({glue:text}`free_bits_top:.2f` and {glue:text}`free_bits_bottom:.2f` bits per code):
#   chapter 5 compares these unconditional samples with the AE's and the VAE's.
# - Everything was recorded in `04_vqvae2.csv`. Chapter 5 sets this VQ-VAE-2 beside the
#   autoencoder and the VAE on the same tests, and beside every code size of chapter 2's
#   autoencoder.

# %% [markdown]
# ## What can go wrong
#
# ```{warning}
# - **Codebook collapse**: codes that no encoder vector picks get no update and stay dead,
#   and the model quietly runs on a fraction of its codebook. Watch the usage per epoch (the
#   monitor above), not only the loss. Restarts (as here; {cite:t}`dhariwal2020jukebox`), k-means
#   re-initialisation {cite:p}`lancucki2020robust` or a low-dimensional, normalised code lookup
#   {cite:p}`yu2022vector` are the usual remedies.
# - **A commitment weight in other units**: this chapter averages both the reconstruction
#   error and the commitment term over their elements, as the code does; a paper that sums
#   either one means a different $\beta_c$ by the same name.
# - **A prior that sees the future**: one wrong mask (type A where type B belongs, or a
#   vertical stack not shifted down) lets a position read itself or what comes after it; the
#   loss then drops fast and the samples are noise. The package's tests check that each
#   output depends only on positions before it; do the same for any PixelCNN you write.
# - **Temperature taken for quality**: lowering $T$ makes cleaner samples of fewer kinds;
#   report the temperature with every sample you show, and compare models at $T = 1$, where
#   they are samples of the model.
# ```
#
# ## Exercises
#
# ```{exercise}
# :label: ex-vq-ema
#
# The EMA update keeps, per code $k$, a count $N_k$ and a sum $m_k$ of the vectors assigned to
# it, both decayed by $\gamma$ each step, and sets $e_k = m_k / N_k$. Show that with
# $\gamma = 0$ this is one step of k-means, and explain what Laplace smoothing of $N_k$
# prevents.
# ```
#
# ```{solution} ex-vq-ema
# :class: dropdown
#
# With $\gamma = 0$, $N_k = n_k$ and $m_k = s_k$, so $e_k = s_k / n_k$: each code moves to the
# mean of the vectors assigned to it, the update step of Lloyd's k-means (the assignment step
# is the nearest-code search). For a code that won nothing, $n_k = 0$ and the update would
# divide by zero; with $\gamma > 0$ its $N_k$ only decays towards zero, and the smoothed
# count $(N_k + \epsilon)/(N + K\epsilon) \cdot N$ keeps the division finite. It does not
# revive the code: that is what restarts are for.
# ```
#
# ```{exercise}
# :label: ex-vq-commit
#
# With the straight-through estimator the gradient with respect to the encoder output is the
# gradient with respect to the quantised vector. Why does the commitment loss need its own
# stop-gradient, on the code side?
# ```
#
# ```{solution} ex-vq-commit
# :class: dropdown
#
# The commitment loss $\beta_c \lVert z - \mathrm{sg}(e_k) \rVert^2$ is meant to move the
# encoder towards its code, not the code towards the encoder: the codebook already follows
# the encoder through the EMA update, at its own pace. Without the stop-gradient the codes
# (were they parameters) would also be pulled by every gradient step, and an encoder output
# and its code could chase each other; in this model the codebook is a buffer outside the
# optimiser, and the stop-gradient states the same intent in the loss.
# ```
#
# ```{exercise}
# :label: ex-vq-bits
#
# How many bits can the two grids carry at most? Compare with the bits per code the priors
# reach on the test codes, and say what the difference measures.
# ```
#
# ```{solution} ex-vq-bits
# :class: dropdown
#
# At most $G_{top}^2 \log_2 K_{top} + G_{bottom}^2 \log_2 K_{bottom}$ bits: here
# {glue:text}`top_grid`² positions of {glue:text}`uniform_top:.1f` bits and
# {glue:text}`bottom_grid`² of {glue:text}`uniform_bottom:.1f`. Given the class (and, at the
# bottom, the top codes): {glue:text}`prior_vs_uniform` The difference,
# per code, is what the priors learnt about which codes follow which. The storage cost of a
# grid is an upper bound on the information it carries, and so is the prior's length (an
# entropy coder stores the grid in that many bits): the lower of the two is the tighter
# bound.
# ```
#
# ```{exercise}
# :label: ex-vq-restarts
#
# Predict, before you read the "without restarts" rows of the training section: what usage
# do you expect on each level of a model trained without restarts, and what happens to its
# reconstruction error?
# ```
#
# ```{solution} ex-vq-restarts
# :class: dropdown
#
# Without restarts, codes that lose the first few assignments never win again: in this run
# the model without restarts used {glue:text}`norestart_usage_top:.0%` of the top codebook and
# {glue:text}`norestart_usage_bottom:.0%` of the bottom one, against
# {glue:text}`restart_usage_top:.0%` and {glue:text}`restart_usage_bottom:.0%` with them; its
# test MSE was {glue:text}`norestart_mse:.5f` against {glue:text}`restart_mse:.5f`.
# ```
#
# ```{exercise}
# :label: ex-vq-temperature
#
# Sample at temperature 0.5 (`-p temperature 0.5`). Predict how the judge's agreement and the
# variety of the samples change.
# ```
#
# ```{solution} ex-vq-temperature
# :class: dropdown
#
# Dividing the logits by $T = 0.5$ squares and renormalises each conditional distribution, so
# the likeliest codes take almost all the probability: samples become cleaner and more alike,
# and the judge usually agrees more often with the asked class (this run's judge, at
# $T$ = {glue:text}`temperature`, {glue:text}`agreement_text`). The row of three temperatures
# above shows the trade-off on unconditional samples; the comparison of chapter 5 samples
# at $T = 1$, where the samples are the model's.
# ```
#
# ```{exercise}
# :label: ex-vq-blind
#
# Change `layers` in the receptive-field cell, fewer and then more, and then `grid`. For each
# design, predict first what happens to its two counts: the blind spot (holes inside the
# field) and the positions beyond the field.
# ```
#
# ```{solution} ex-vq-blind
# :class: dropdown
#
# Each layer extends a field by one row up and one column to each side. The plain stack's
# blind spot never closes: through its masks a path moves one column right only by moving
# one row up, so the triangle above and to the right of the output stays unseen. With more
# layers that triangle grows with the field until the field meets the grid's edges, and then
# keeps its size. The gated stack has no blind spot at any depth or on any grid: its field is
# a filled block. Neither design sees past its reach: the count beyond the field falls as you
# add layers, down to zero once the field spans the grid, and rises when the grid grows around
# a field of the same depth. On this page: {glue:text}`prior_field_text`
# ```
