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
# # 2. The autoencoder: squeezing images through a small code
#
# Chapter 1 squeezed an image into ten class scores. Here we squeeze it into a short vector of
# numbers, the **code** $z$, from which the image itself must be rebuilt. An **encoder**
# network compresses the image $x$ into $z$, a **decoder** network restores $x$ from $z$, and
# the two are trained together to make the copy as close to the original as possible.
#
# Nothing forces the code to mean anything, and yet, because it is small, the network has to
# decide what to keep. The length $D$ of $z$, the `latent_size`, is the one dial of this
# chapter: we
# train one autoencoder per size and watch what survives.
#
# **What you will learn:** how an autoencoder is built and trained; how much better than the
# best *linear* compression (PCA) it does; what the space of codes looks like when you walk
# through it, blend two codes or draw random ones; and how much a simple classifier can read
# off the codes.
#
# *This page was executed on {glue:text}`page_run`.*
#
# ```{glue:figure} lead_figure
# :name: fig-lead-02
#
# The autoencoder of this chapter, drawn from the model itself: each box is a layer's output with
# its shape, the orange box is the code (the section *The network* reads it).
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
# can you: `papermill -p NAME VALUE`, or `-p 02.NAME=VALUE` on the book's build. The
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
import pandas as pd
import torch
from latent_notes import families
from latent_notes.book import explorers, runtimes, sentences
from latent_notes.book.notebook import glue, lead_figure, start_chapter
from latent_notes.book.parameters import AutoencoderParameters, check_classes
from latent_notes.data import first_of_class, one_per_class
from latent_notes.experiments import diagrams, latent, plots, probes
from latent_notes.experiments.metrics import reconstruction_scores
from latent_notes.models.autoencoder import Autoencoder
from latent_notes.models.common import batched, count_parameters, sample_gaussian

# %% tags=["parameters", "hide-input"]
dataset = "mnist5k"  # mnist5k | digits | mnist | fashion-mnist | cifar10 | folder:PATH
data_root = None  # the data sets' folder (None: $LATENT_NOTES_DATA, else ./data)
epochs = 5  # passes over the training images, per autoencoder
subset = None  # cap on the number of training images (None: all of them)
seed = 0  # same seed, same numbers (on the CPU)
device = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
deterministic = False  # True: bit-for-bit repeatable on CUDA (slower)
precision = "float32"  # of the training steps: float32 | bfloat16 | auto
results_dir = "results"  # this chapter writes <results_dir>/02_autoencoder.csv
cache_dir = None  # checkpoints (None: $LATENT_NOTES_CACHE, else ~/.cache)
weights = None  # fetch trained models: auto | off | URL | folder (None: see README)
latent_sizes = [2, 8, 16, 32]  # code sizes of the sweep, one autoencoder each
width = 32  # channels after the first halving (doubled at each next one)
batch_size = 64  # images per gradient step
lr = 2e-3  # peak learning rate of the one-cycle schedule
traversal_latent = 16  # code size for traversal, interpolation, sampling, t-SNE
traversal_class = "2"  # class (name or index) of the test image traversed
traversal_range = 1.0  # each coordinate moves from -range to +range ...
traversal_step = 0.25  # ... in steps of this size
traversal_units = "std"  # std: steps in std devs of a coordinate | code: raw
traversal_dims = 16  # coordinates shown in the traversal (the first ones)
interpolation_from = "2"  # class (name or index) of the interpolation's first image
interpolation_to = "7"  # class of the last image
interpolation_steps = 9  # frames, both ends included
noise_latent = None  # model of the noise experiment (None: largest of latent_sizes)
noise_scales = [0.0, 0.1, 0.25, 0.5, 1.0, 2.0]  # std devs of each coordinate
n_samples = 16  # random codes decoded per distribution
probe_train = None  # training codes for the linear probes (None: all)
tsne_points = 500  # test codes on the t-SNE map

# %% tags=["hide-input"]
chapter = start_chapter("02_autoencoder", dataset=dataset, data_root=data_root,
                        epochs=epochs, subset=subset, seed=seed, device=device,
                        results_dir=results_dir, cache_dir=cache_dir, weights=weights,
                        deterministic=deterministic, precision=precision,
                        parameters=AutoencoderParameters.of(globals()))
glue("run_cost", runtimes.cost_sentence("02_autoencoder"))
data = chapter.data
# two classes for the probes, and a test image of each class the walks start from
check_classes("02_autoencoder", data, at_least=2, traversal_class=traversal_class,
              interpolation_from=interpolation_from, interpolation_to=interpolation_to)
# the sweep sorted, the noise experiment's model (None: the largest) and its scales (a
# list given to papermill as text is read as one)
sizes, noise_latent = chapter.parameters.latent_sizes, chapter.parameters.noise_latent
noise_scales = chapter.parameters.noise_scales
print(data, "on", chapter.device)
print("latent sizes:", sizes)

# %% [markdown]
# ## The idea in one formula
#
# An encoder $f_\phi$ maps an image $x$ (here $C \times H \times W$ pixels in $[0, 1]$) to a
# code $z = f_\phi(x) \in \mathbb{R}^D$, and a decoder $g_\theta$ maps the code back to an
# image $\hat x = g_\theta(z)$. Both are trained to minimise the mean squared error per pixel
# over the $N$ training images,
#
# $$
# \mathcal{L}(\phi, \theta) = \frac{1}{N\,CHW} \sum_{n=1}^{N}
# \big\lVert x_n - g_\theta\big(f_\phi(x_n)\big) \big\rVert^2 .
# $$
#
# If $D$ were as large as the number of pixels, copying would be trivial. With $D$ far smaller
# (a *bottleneck*) the pair must find the few numbers that describe the images best, which is
# why the code is called a **latent** representation {cite:p}`hinton2006reducing`.
#
# ## The network
#
# The encoder halves the image with strided $4 \times 4$ convolutions (each followed by batch
# normalisation and a ReLU), flattens the last feature maps and maps them linearly to the $D$
# numbers of the code. The decoder mirrors it: a linear layer back to feature maps, transposed
# convolutions that double the size, and a sigmoid so that every pixel lands in $[0, 1]$. For
# 28-pixel images the sides go 28 → 14 → 7 and back: a stride-2 convolution with padding 1
# halves an even side exactly, and its transposed twin doubles it exactly.

# %%
autoencoders = families.FAMILIES["ae"]
example = Autoencoder(autoencoders.configure(data, latent_size=traversal_latent,
                                             width=width)).eval()
title = f"The autoencoder for {data.name}, code of {traversal_latent} numbers"
lead_figure(diagrams.draw(diagrams.architecture(example), title))
print(f"{count_parameters(example):,} parameters")

# %% [markdown]
# The figure is drawn from the model: one image passes through it and each layer reports the
# shape it outputs (batch norms and ReLUs change no shape and are left out). The narrowest
# box, orange, is the code: everything the decoder knows about the image.
#
# With a code of {glue:text}`traversal_latent_size` numbers the network has
# {glue:text}`params_example:,` weights; each image has {glue:text}`pixels` pixel values, so
# the code holds {glue:text}`compression:.0f` times fewer numbers than the image (a count of
# numbers, not of bits: a code number is a 32-bit float, and nothing here measures how much
# information it carries).
#
# ## Training one autoencoder per code size
#
# Every model is trained with Adam and a one-cycle learning-rate schedule, as in chapter 1, on
# the same shuffled batches; the validation images are evaluated after every epoch. A trained
# model is
# kept in the checkpoint cache and loaded the next time, so the later experiments (and later
# chapters) reuse exactly these models.

# %%
trained = {}
for size in sizes:
    model_config, recipe = autoencoders.recipe(data, latent_size=size, width=width,
                                               epochs=epochs, batch_size=batch_size,
                                               lr=lr)
    trained[size] = families.train(autoencoders, data, model_config, recipe,
                                   run=chapter.run)
    print(f"latent {size:>4}: {trained[size].status}")
plots.training_curves({f"latent {d}": r.history for d, r in trained.items()},
                      metrics=("loss",), log_y=True,
                      title=f"Reconstruction MSE per pixel on {data.name} "
                            "(dashed: train, solid: validation)");

# %% [markdown]
# The curves show how fast each model learns; {glue:text}`curves_text` The gap between the
# dashed (training) and solid (validation) curves tells whether a model starts to memorise its
# training images.
#
# ## The linear floor: PCA
#
# Principal component analysis is the best *linear* compression: projecting the centred images
# on the first $D$ principal directions $W \in \mathbb{R}^{CHW \times D}$ and back,
# $\hat x = \bar x + W W^\top (x - \bar x)$ ($\bar x$ the mean training image), gives the
# smallest squared error any linear encoder and decoder with a $D$-dimensional code can reach (a
# linear autoencoder trained by gradient
# descent finds the same subspace: {cite:t}`baldi1989neural`). We fit PCA on the same training
# images and measure both on the **whole** test set, with the autoencoders' final weights. The
# non-linear model is only worth its convolutions if it does better.

# %%
rows = []
for size, result in trained.items():
    mse = reconstruction_scores(result.model, data.test.images,
                                chapter.device)["test_mse"]
    pca = latent.pca_baseline(data.train.images, data.test.images, size, seed=seed)
    chapter.record_all("ae", {"test_mse": mse, "pca_test_mse": pca}, f"latent={size}")
    rows.append({"latent_size": size, "autoencoder": mse, "PCA": pca,
                 "ratio AE / PCA": mse / pca})
sweep = pd.DataFrame(rows).set_index("latent_size")
plots.sweep_plot(sweep.reset_index(), "latent_size",
                 {"autoencoder": "convolutional autoencoder",
                  "PCA": "PCA, same number of components"},
                 title=f"Test reconstruction error against code size ({data.name})",
                 ylabel="test MSE per pixel", log_y=True)
sweep.round(5)

# %% [markdown]
# At code size {glue:text}`traversal_latent_size` the autoencoder's test error is
# {glue:text}`ae_mse:.4f` per pixel, {glue:text}`ae_vs_pca` PCA's {glue:text}`pca_mse:.4f`;
# across the sweep the autoencoder beats PCA at {glue:text}`n_wins` of
# {glue:text}`n_sizes` code sizes. The ratio of the two errors is
# {glue:text}`ratio_smallest:.2f` at code size {glue:text}`smallest_size` and
# {glue:text}`ratio_largest:.2f` at code size {glue:text}`largest_size` (below 1: the
# autoencoder wins), so its relative advantage {glue:text}`advantage_trend` across the sweep.
# Two things pull against each other. The images lie near a curved surface in pixel space, and
# a non-linear encoder can follow the curve where a linear projection can only cut a flat slice
# through it; but with many components even a flat slice keeps nearly everything, while a
# network trained for a few epochs has not squeezed out its last bit of error.
#
# ## What survives the bottleneck
#
# The same test images, one per class, rebuilt by every autoencoder of the sweep: the top row
# holds the originals, each further row one code size.

# %%
picks = one_per_class(data.test.labels, data.classes)[:10]
originals = data.test.images[picks]
rebuilt = [batched(r.model.reconstruct, originals, chapter.device)
           for r in trained.values()]
plots.image_grid(torch.cat([originals, *rebuilt]), len(picks),
                 row_labels=["original"] + [f"latent {d}" for d in sizes],
                 col_labels=[data.classes[data.test.labels[i]] for i in picks],
                 title="Test images and their reconstructions, by code size");

# %% [markdown]
# Read the rows from the smallest code down: what of each writer's slant and stroke width
# survives, and which digits come back as another class, at each size (the test errors of the
# table above are the average of what the rows show). Where a reconstruction is blurred, that
# is the signature of the squared error: when the code cannot say exactly where a stroke lies,
# the average of the possible images is the cheapest answer.
#
# From here on we look *inside* the space of codes.
#
# ## How robust is the decoder around real codes?
#
# Take the codes of a few test images, add Gaussian noise and decode. Because each coordinate
# of the code has its own scale, the noise is measured in standard deviations of that
# coordinate over the training codes: $z' = z + s\,\sigma \odot \varepsilon$ with
# $\varepsilon \sim \mathcal{N}(0, I)$ and $s$ one of `noise_scales`.

# %%
noise_model = trained[noise_latent].model
# Codes of (up to probe_train) training images per model, encoded once, reused below.
probe_idx = probes.probe_indices(data.train.labels, max_train=probe_train, seed=seed)
n_probe = len(probe_idx)
train_codes = {d: batched(r.model.encode, data.train.images[probe_idx], chapter.device)
               for d, r in trained.items()}
spread = train_codes[noise_latent].std(0)  # (D,)
clean = batched(noise_model.encode, originals, chapter.device)  # (10, D)
all_test = batched(noise_model.encode, data.test.images, chapter.device)
noise_rows, grids = [], []
for scale in noise_scales:
    decoded = batched(noise_model.decode,
                      latent.perturb_codes(all_test, scale, spread, seed),
                      chapter.device)
    noise_rows.append({"noise scale": scale,
                       "test MSE": float(((decoded - data.test.images) ** 2).mean())})
    grids.append(batched(noise_model.decode,
                         latent.perturb_codes(clean, scale, spread, seed),
                         chapter.device))
noise_table = pd.DataFrame(noise_rows).set_index("noise scale")
plots.image_grid(torch.cat(grids), len(picks),
                 row_labels=[f"s = {s}" for s in noise_scales],
                 title=f"Decoding noisy codes (latent {noise_latent}), noise in "
                       "standard deviations per coordinate")
noise_table.round(5)

# %% [markdown]
# For the autoencoder with a code of {glue:text}`noise_latent_size` numbers,
# {glue:text}`noise_text` Look down each column of the figure for the scale at which a digit
# changes identity; at {glue:text}`noise_scale_max` standard deviations the test error has
# grown from {glue:text}`noise_mse_clean:.4f` to {glue:text}`noise_mse_max:.4f`. The decoder has
# only ever seen the codes of real images; what
# it does far from them is not something the training asked about.
#
# ## Walking along one coordinate at a time
#
# A *latent traversal* takes the code of one test image and changes a single coordinate while
# keeping all others fixed, one row per coordinate. The steps run from `-traversal_range` to
# `+traversal_range`, in standard deviations of the coordinate (with `traversal_units="std"`)
# or in raw code units.

# %%
model = trained[traversal_latent].model
traversal_codes = train_codes[traversal_latent]
mean, sd = traversal_codes.mean(0), traversal_codes.std(0)
which = first_of_class(data.test.labels, data.classes, traversal_class)
z = batched(model.encode, data.test.images[which:which + 1], chapter.device)[0]
steps = int(round(2 * traversal_range / traversal_step)) + 1
values = torch.linspace(-traversal_range, traversal_range, steps)
dims = range(min(traversal_dims, len(z)))
if traversal_units == "std":  # walk in standardised coordinates u = (z - mean) / sd
    decode = lambda u: model.decode(  # noqa: E731
        mean.to(u.device) + sd.to(u.device) * u)
    grid = latent.traverse(decode, (z - mean) / sd, values, dims, device=chapter.device)
else:
    grid = latent.traverse(model.decode, z, values, dims, device=chapter.device)
plots.image_grid(grid.flatten(0, 1), steps, size=0.8,
                 row_labels=[f"$z_{{{d + 1}}}$" for d in dims],
                 col_labels=[f"{v:+.2f}" for v in values.tolist()],
                 title=f"Traversal of a test "
                       f"'{data.classes[data.test.labels[which]]}' (latent "
                       f"{traversal_latent}, offsets in {traversal_units} units)");
row_change = (grid[:, -1] - grid[:, 0]).abs().flatten(1).mean(1)  # first → last column
for end in ("min", "max"):
    chapter.record("ae", "traversal_row_change", float(getattr(row_change, end)()),
                   setting=f"latent={traversal_latent},row={end}")
test_pairs = chapter.record("data", "pair_difference",
                            latent.pair_difference(data.test.images, seed),
                            setting="test images")

# %% [markdown]
# Each row changes one number of the code. From its first column to its last, a row changes a
# pixel by {glue:text}`row_change_min:.3f` to {glue:text}`row_change_max:.3f` on average,
# against {glue:text}`test_pair_change:.3f` between two random test images. What changes
# (a thicker stroke, a tilt, a bend, a mixture) is for the eye to read from the rows; widen
# `traversal_range` to watch digits change identity. Nothing
# in the loss asked the coordinates to mean one thing each, so they rarely do: the
# autoencoder's code is *entangled*. (Chapter 3 adds a term that pulls every code towards a
# standard normal; that alone does not make single coordinates mean one thing each, and
# without labels nothing guarantees it {cite:p}`locatello2019challenging`.)
#
# ### Try it: the code under your fingers
#
# The same autoencoder runs below in the page (exported to ONNX, run by onnxruntime-web; no
# server, no Python). Choose a test digit to start from: its code sets the sliders, one per
# coordinate, in the same standard-deviation units as the traversal. Move one slider and
# the decoder redraws the image at once. Things to try: find a coordinate that thickens the
# stroke; push one to ±3 and see whether the digit stays a digit; start from a 4 and try to
# reach a 9 with as few sliders as you can.

# %%
explorers.ae_sliders(model, data.test.images, data.test.labels, data.classes,
                     "02_autoencoder")

# %% [markdown]
# ## Blending two digits: in latent space and in pixel space
#
# Take a test image of each of two classes, encode both, walk along the straight line between
# the two codes, $z_t = (1 - t)\,z_a + t\,z_b$, and decode every step. Below it, the same blend
# done on the pixels, $(1 - t)\,x_a + t\,x_b$.

# %%
first = first_of_class(data.test.labels, data.classes, interpolation_from)
last = first_of_class(data.test.labels, data.classes, interpolation_to)
ends = batched(model.encode, data.test.images[[first, last]], chapter.device)
in_latent = latent.interpolate(model.decode, ends[0], ends[1], interpolation_steps,
                               device=chapter.device)
in_pixels = latent.pixel_blend(data.test.images[first], data.test.images[last],
                               interpolation_steps)
t = torch.linspace(0, 1, interpolation_steps)
plots.image_grid(torch.cat([in_latent, in_pixels]), interpolation_steps,
                 row_labels=["latent", "pixels"],
                 col_labels=[f"t={v:.2f}" for v in t.tolist()],
                 title=f"From a '{data.classes[data.test.labels[first]]}' to a "
                       f"'{data.classes[data.test.labels[last]]}' "
                       f"(latent {traversal_latent})");

# %% [markdown]
# The pixel blend is a double exposure: by construction its middle frame is the two digits
# at half strength each. Every frame of the latent path is drawn by the decoder instead, from
# a code on the straight line. Whether the middle frames look like *plausible* digits is a
# question for a measurement over many pairs, not for one picture: it depends on whether the
# straight line stays where the training codes are, which the next section measures for the
# midpoints of random pairs of test codes, and chapter 5 scores the middle frames themselves
# by their Fréchet distance to real images, for this autoencoder, the VAE and VQ-VAE-2.
#
# ## Is the autoencoder a generator?
#
# To *generate* a new image we would draw a code at random and decode it. But from which
# distribution? Two natural tries: the standard normal $\mathcal{N}(0, I)$, and a Gaussian
# $\mathcal{N}(\mu, \Sigma)$ fitted to the training codes (mean and covariance).

# %%
standard = torch.randn(n_samples, traversal_latent,
                       generator=torch.Generator().manual_seed(seed))
fitted = sample_gaussian(model.prior_mean, model.prior_cov, n_samples,
                         seed=seed)  # = model.sample
plots.image_grid(torch.cat([batched(model.decode, standard, chapter.device),
                            batched(model.decode, fitted, chapter.device)]),
                 n_samples, size=0.8, row_labels=["N(0, I)", "fitted"],
                 title=f"Decoded random codes (latent {traversal_latent})")
test_traversal_codes = batched(model.encode, data.test.images, chapter.device)
n_pairs = min(n_samples * 4, len(test_traversal_codes) // 2)  # random test-code pairs
pair = torch.randperm(len(test_traversal_codes),
                      generator=torch.Generator().manual_seed(seed))[:2 * n_pairs]
ends_a = test_traversal_codes[pair[:n_pairs]]
ends_b = test_traversal_codes[pair[n_pairs:]]
midpoints = (ends_a + ends_b) / 2  # t = 0.5 on each straight line
candidates = {"test images' codes": test_traversal_codes[:n_samples * 4],
              "N(0, I) samples": standard, "fitted Gaussian samples": fitted,
              "midpoints of two test codes": midpoints}
distances = pd.Series({name: latent.nearest_distance(codes, traversal_codes)
                       for name, codes in candidates.items()},
                      name="mean distance to the nearest training code")
distances.to_frame().round(3)

# %% [markdown]
# Nothing in the training asked the codes to follow $\mathcal{N}(0, I)$. The
# standard deviations of the coordinates range from {glue:text}`code_sd_min:.2f` to
# {glue:text}`code_sd_max:.2f` and their means are {glue:text}`code_mean_abs:.2f` away from
# zero on average. {glue:text}`distances_text` A
# plain autoencoder is trained to *reconstruct*, not to make every code decodable; the
# variational autoencoder of the next chapter adds exactly that requirement.
#
# ## What can a linear classifier read off the codes?
#
# A *linear probe* freezes the encoder, computes the codes of the training images and fits a
# logistic regression from code to label; its accuracy on the test codes says how much class
# information the code holds in a linearly readable form. The reference is the same probe on
# the raw pixels. The labels were never used to train the autoencoder.

# %%
probe_rows = []
for size in sizes:
    test_codes = batched(trained[size].model.encode, data.test.images, chapter.device)
    accuracy = probes.linear_probe(train_codes[size], data.train.labels[probe_idx],
                                   test_codes, data.test.labels, seed=seed)
    chapter.record("ae", "probe_accuracy", accuracy, setting=f"latent={size}")
    probe_rows.append({"latent_size": size, "probe accuracy": accuracy})
pixel_accuracy = probes.linear_probe(data.train.images[probe_idx],
                                     data.train.labels[probe_idx], data.test.images,
                                     data.test.labels, seed=seed)
chapter.record("pixels", "probe_accuracy", pixel_accuracy)
probe_table = pd.DataFrame(probe_rows).assign(pixels=pixel_accuracy)
plots.sweep_plot(probe_table, "latent_size",
                 {"probe accuracy": "logistic regression on the codes",
                  "pixels": "logistic regression on the pixels"},
                 title=f"Linear probe accuracy on the test set ({data.name})",
                 ylabel="test accuracy")
probe_table.set_index("latent_size").round(4)

# %% [markdown]
# Trained on {glue:text}`probe_n` training codes, the best probe reads the label with
# {glue:text}`probe_best:.2%` accuracy at code size {glue:text}`probe_best_size`,
# {glue:text}`probe_vs_pixels` the {glue:text}`probe_pixels:.2%` of the same probe on the raw
# pixels. With a code of {glue:text}`smallest_size` numbers the probe reaches
# {glue:text}`probe_smallest:.2%`: a softmax classifier on a plane cuts it into ten convex
# regions, one per class, and the classes of this code are not laid out that way (a code of
# size 2 is drawn as it is in the map below). A few more numbers already carry most of the
# label, although nobody told the autoencoder that labels
# exist: digits of one class look alike, so similar images get similar codes.
# {glue:text}`probe_trend` A reconstruction loss rewards codes from which a non-linear decoder
# can rebuild the image; it is indifferent to whether the classes can be told apart by a
# hyperplane in code space, so a larger code that rebuilds better need not be read better.
#
# ## A map of the codes
#
# t-SNE {cite:p}`maaten2008visualizing` lays high-dimensional points out in two dimensions so
# that near neighbours stay near; a code of size 2 needs no such map and is drawn as it is.
# Colours are the labels, which the autoencoder never saw.

# %%
latent.tsne_map(test_traversal_codes, data.test.labels, data.classes,
                max_points=tsne_points, seed=seed,
                title=f"t-SNE of {min(tsne_points, len(data.test))} test codes "
                      f"(latent {traversal_latent})")
if 2 in trained:
    latent.tsne_map(batched(trained[2].model.encode, data.test.images, chapter.device),
                    data.test.labels, data.classes, max_points=tsne_points, seed=seed,
                    title="The codes of size 2 as they are (test images)")

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
glue("params_example", count_parameters(example))
glue("pixels", data.channels * data.image_size ** 2)
glue("traversal_latent_size", traversal_latent)
glue("compression", data.channels * data.image_size ** 2 / traversal_latent)
at = sweep.loc[traversal_latent]  # the sweep at the code size of the experiments
glue("ae_mse", at["autoencoder"])
glue("pca_mse", at["PCA"])
glue("ae_vs_pca", "below" if at["autoencoder"] < at["PCA"] else "above")
glue("n_wins", int((sweep["autoencoder"] < sweep["PCA"]).sum()))
glue("n_sizes", len(sweep))
ratio = sweep["ratio AE / PCA"]
glue("ratio_smallest", ratio.iloc[0])
glue("ratio_largest", ratio.iloc[-1])
glue("smallest_size", sizes[0])
glue("largest_size", sizes[-1])
glue("advantage_trend", "grows" if ratio.iloc[-1] < ratio.iloc[0] else "shrinks")
glue("noise_latent_size", noise_latent)
glue("noise_mse_clean", noise_table["test MSE"].iloc[0])
for scale, error in noise_table["test MSE"].items():
    chapter.record("ae", "noisy_code_test_mse", error,
                   setting=f"latent={noise_latent},s={scale:g}")
glue("noise_text", sentences.noise_sentence(noise_table["test MSE"].to_dict()))
final_val = {d: chapter.record("ae", "final_val_mse", r.history["val_loss"].iloc[-1],
                               setting=f"latent={d}") for d, r in trained.items()}
glue("curves_text", sentences.curves_sentence(final_val))
glue("noise_mse_max", noise_table["test MSE"].iloc[-1])
glue("noise_scale_max", noise_scales[-1])
glue("row_change_min", float(row_change.min()))
glue("row_change_max", float(row_change.max()))
glue("test_pair_change", test_pairs)
glue("code_sd_min", float(sd.min()))
glue("code_sd_max", float(sd.max()))
glue("code_mean_abs", float(mean.abs().mean()))
glue("dist_test", distances.iloc[0])
glue("dist_standard", distances.iloc[1])
glue("dist_fitted", distances.iloc[2])
for where, distance in zip(("test codes", "N(0,I)", "fitted", "midpoints"), distances,
                           strict=True):
    chapter.record("ae", "nearest_code_distance", distance,
                   setting=f"latent={traversal_latent},{where}")
glue("distances_text", sentences.code_distances_sentence(*distances.iloc[:4]))
best = probe_table.loc[probe_table["probe accuracy"].idxmax()]
largest = probe_table.iloc[-1]
glue("probe_n", n_probe)
glue("probe_best_size", int(best["latent_size"]))
glue("probe_best", best["probe accuracy"])
glue("probe_smallest", probe_table["probe accuracy"].iloc[0])
glue("probe_pixels", pixel_accuracy)
glue("probe_vs_pixels", "above" if best["probe accuracy"] > pixel_accuracy else "below")
glue("probe_trend",
     "The probe improves all the way to the largest code."
     if int(best["latent_size"]) == int(largest["latent_size"]) else
     f"Past code size {int(best['latent_size'])} the probe does not improve "
     f"({largest['probe accuracy']:.2%} at size {int(largest['latent_size'])}).")

# %% [markdown]
# Look for which classes form islands of their own and which touch: classes that share
# strokes (on digits, 4 and 9, or 3, 5 and 8) are the ones to expect together. Distances
# *between* islands on a t-SNE map mean little {cite:p}`wattenberg2016how`; what it shows is
# who sits next to whom.
#
# ## Summary
#
# - An autoencoder is an encoder and a decoder trained to copy images through a small code;
#   the code size decides how much survives, and at code size
#   {glue:text}`traversal_latent_size` the test error was {glue:text}`ae_mse:.4f` per pixel.
# - PCA, the best linear compression, is the floor: the autoencoder beat it at
#   {glue:text}`n_wins` of {glue:text}`n_sizes` code sizes.
# - Random codes land away from the codes of real images (the distances measured above):
#   nothing in the training organises the space of codes for sampling.
# - Without ever seeing a label, the codes hold enough class information for a linear probe to
#   reach {glue:text}`probe_best:.2%`.
#
# All numbers are in this chapter's results table (`02_autoencoder.csv`). Next, the variational
# autoencoder turns the code into a distribution and makes sampling work.

# %% [markdown]
# ## What can go wrong
#
# ```{warning}
# - **A code too small for the data**: every reconstruction looks like the same few
#   prototypes. The sweep above shows where the error stops falling; below it, no training
#   trick helps.
# - **An unused coordinate**: a coordinate the decoder ignores spreads over nothing. The
#   traversal shows it as a row that does not change; the spread of each coordinate over the
#   test codes tells you which ones these are.
# - **Sampling by drawing random codes**: nothing made the codes of real images fill any
#   simple region, so most random codes decode to smudges (the section on generation). This
#   is the autoencoder working as trained, not a bug: chapter 3 changes the training.
# ```

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-ae-linear
#
# The PCA floor is fitted on the same training images. Show that a linear autoencoder
# (encoder and decoder without non-linearities) trained with the squared error can do no
# better than PCA with the same number of components; {cite:t}`baldi1989neural` prove it.
# ```
#
# ```{solution} ex-ae-linear
# :class: dropdown
#
# Stack the $N$ centred training images, each flattened to $CHW$ numbers, as the rows of a
# matrix $M$ ($N \times CHW$). A linear encoder $A$ ($D \times CHW$) and decoder $B$
# ($CHW \times D$) reconstruct it as $M A^\top B^\top$, a matrix of rank at most $D$. The
# squared error $\lVert M - M A^\top B^\top \rVert_F^2$ is therefore at least the error of
# the best rank-$D$ approximation of $M$, which by the Eckart–Young theorem is $M$ projected
# on its top $D$ principal directions: PCA. PCA attains it, so a linear autoencoder can at best
# match PCA; only non-linear layers can beat it, as this chapter's autoencoder did at
# {glue:text}`n_wins` of {glue:text}`n_sizes` code sizes.
# ```
#
# ```{exercise}
# :label: ex-ae-width
#
# Rerun the sweep with `-p width 8` and with `-p width 64`. Does a wider network lower the
# error at every code size, or mostly at the large ones? Predict first.
# ```
#
# ```{solution} ex-ae-width
# :class: dropdown
#
# At a small code the bottleneck, not the network, limits the error: a few numbers cannot
# hold more, however well they are computed, so width helps little there. At large codes the
# encoder and decoder are the limit and width helps more. In this run the autoencoder's error
# was {glue:text}`ratio_smallest:.2f` of PCA's at {glue:text}`smallest_size` numbers and
# {glue:text}`ratio_largest:.2f` at {glue:text}`largest_size`; compare these two ratios in
# your two runs.
# ```
#
# ```{exercise}
# :label: ex-ae-units
#
# The traversal moves each coordinate in units of its standard deviation
# (`traversal_units = "std"`). Rerun with `-p traversal_units code`, which moves every
# coordinate by the same raw amount: do all rows still change about as much?
# ```
#
# ```{solution} ex-ae-units
# :class: dropdown
#
# No: the coordinates have different spreads over the test codes (in this run their standard
# deviations ranged from {glue:text}`code_sd_min:.2f` to {glue:text}`code_sd_max:.2f`), and
# nothing in the autoencoder's loss fixes their scale. A raw step that is small for a
# widely spread coordinate is huge for a narrow one, so some rows barely change while others
# leave the region of real codes and decode to smudges.
# ```
#
# ```{exercise}
# :label: ex-ae-probe
#
# Compare the linear probe on the smallest codes with the one on the best code size (the
# probe section's table). Plot the 2-D codes coloured by class and say where the classes
# overlap.
# ```
#
# ```{solution} ex-ae-probe
# :class: dropdown
#
# In this run the probe read {glue:text}`probe_smallest:.1%` of the classes off the smallest
# codes and {glue:text}`probe_best:.1%` off {glue:text}`probe_best_size` numbers. A softmax
# classifier can carve a plane into ten convex regions, so what limits it on 2-D codes is
# their arrangement: digits drawn alike (4 and 9, 3 and 5) share a region of the plane,
# because the autoencoder placed codes for reconstruction, not for classes.
# ```
#
# ```{exercise}
# :label: ex-ae-subset
#
# Predict, then run: train the chapter with `-p subset 500`. Which grows more, the gap
# between the autoencoder and PCA, or the gap between training and test reconstruction
# error?
# ```
#
# ```{solution} ex-ae-subset
# :class: dropdown
#
# PCA has $D \times CHW$ numbers to fit and no iterations to over-fit with; the autoencoder
# has {glue:text}`params_example:,` weights at a code of
# {glue:text}`traversal_latent_size` numbers. With 500 images the autoencoder's training error
# keeps
# falling while its test error stalls, so the gap between training and test error is the one
# to watch, and the autoencoder's lead over PCA can shrink or vanish at large code sizes. The
# training curves and the sweep's table show both.
# ```
