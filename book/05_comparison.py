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
# # 5. AE vs VAE vs VQ-VAE-2, on the same tests
#
# Three chapters gave three answers to one question: how do we compress an image into a latent
# code? The autoencoder squeezes it into a vector, the VAE into a *distribution* over vectors
# that stays close to $\mathcal{N}(0, I)$, and VQ-VAE-2 into two grids of codebook indices
# with an autoregressive prior on top. Here the three meet on the same data, the same train/test
# split and the same tests, and every claim comes with a number and a picture.
#
# **The tests:** reconstruction, what one latent unit controls, interpolation, how well a
# simple classifier reads the codes, and how good the generated images are, judged by chapter
# 1's deep CNN. At the end, the results of every chapter are gathered into one table, and
# VQ-VAE-2 meets every code size of chapter 2's autoencoder.
#
# *This page was executed on {glue:text}`page_run`.*
#
# ```{glue:figure} lead_figure
# :name: fig-lead-05
#
# The three models this chapter compares, drawn from the models themselves (the section *The three
# models* reads them).
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
# can you: `papermill -p NAME VALUE`, or `-p 05.NAME=VALUE` on the book's build. The
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
from IPython.display import display
from latent_notes import families
from latent_notes.book import explorers, runtimes, sentences
from latent_notes.book.notebook import download_link, glue, lead_figure, start_chapter
from latent_notes.book.parameters import ComparisonParameters, check_classes
from latent_notes.book.results import gather, select
from latent_notes.data import first_of_class, one_per_class
from latent_notes.experiments import (
    compare,
    diagrams,
    efficiency,
    latent,
    plots,
    probes,
    rates,
)
from latent_notes.experiments.metrics import (
    classifier_features,
    gaussian_stats,
    reconstruction_scores,
)
from latent_notes.experiments.vq_experiments import code_box
from latent_notes.families import FAMILIES
from latent_notes.models.common import batched

# %% tags=["parameters", "hide-input"]
dataset = "mnist5k"  # mnist5k | digits | mnist | fashion-mnist | cifar10 | folder:PATH
data_root = None  # the data sets' folder (None: $LATENT_NOTES_DATA, else ./data)
epochs = 3  # passes over the training images, for a model the cache lacks
subset = None  # cap on the number of training images (None: all of them)
seed = 0  # same seed, same numbers (on the CPU)
device = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
deterministic = False  # True: bit-for-bit repeatable on CUDA (slower)
precision = "float32"  # of the training steps: float32 | bfloat16 | auto
results_dir = "results"  # this chapter writes <results_dir>/05_comparison.csv
cache_dir = None  # checkpoints (None: $LATENT_NOTES_CACHE, else ~/.cache)
weights = None  # fetch trained models: auto | off | URL | folder (None: see README)
latent_size = 16  # code size of the AE and VAE compared (chapters 2, 3 train it)
n_samples = 260  # generated images per draw for the sample scores
fid_draws = 5  # seeded draws per Fréchet distance (mean and std over them)
temperature = 1.0  # sampling temperature of VQ-VAE-2's priors
labels_per_class = [1, 10, 100, 1000, None]  # labelled images per class (None: all)
label_repeats = 5  # labelled draws up to 100 per class (more labels: one draw)
spread_at = [10]  # labels per class where label spreading also runs
spread_neighbours = 10  # k of the k-nearest-neighbour graph label spreading runs on
interpolation_from = "2"  # class (name or index) of the interpolation's first image
interpolation_to = "7"  # class of the last image
interpolation_pairs = 100  # random test pairs scored by their inner frames
judge_epochs = 3  # chapter 1's recipe for the judge (epochs, batch_size, lr): the
judge_batch_size = 16  # same recipe gives the same cache key, so chapter 1's judge
judge_lr = 5e-3  # is loaded (or, when chapter 1 has not run, that judge is trained)
vq_epochs = 3  # chapter 4's VQ-VAE-2 recipe (epochs, batch_size, lr), which trains
vq_batch_size = 64  # the same-backbone AE and VAE of section 1 on VQ-VAE-2's own
vq_lr = 1e-3  # encoders and decoders

# %% tags=["hide-input"]
chapter = start_chapter("05_comparison", dataset=dataset, data_root=data_root,
                        epochs=epochs, subset=subset, seed=seed, device=device,
                        results_dir=results_dir, cache_dir=cache_dir, weights=weights,
                        deterministic=deterministic, precision=precision,
                        label="comparison",
                        parameters=ComparisonParameters.of(globals()))
glue("run_cost", runtimes.cost_sentence("05_comparison"))
data, dev = chapter.data, chapter.device
# two classes for the probes, a test image of each class the blend joins, and 9 test
# images: one random pair and the 7 real images its path is measured against
check_classes("05_comparison", data, at_least=2, test_images=9,
              interpolation_from=interpolation_from, interpolation_to=interpolation_to)
# the label counts as checked (a list given to papermill as text is read as one)
labels_per_class = chapter.parameters.labels_per_class
spread_at = chapter.parameters.spread_at
test_x, test_y = data.test.images, data.test.labels
print(data, "on", dev)

# %% [markdown]
# ## The three models
#
# The models are the ones chapters 2, 3 and 4 trained on this data set: the autoencoder and the
# β = 1 VAE with a code of `latent_size` numbers, and the VQ-VAE-2 with its two PixelCNN priors.
# They are found in the checkpoint cache under stable names; a model that is missing (because
# its chapter has not run on this data) is trained here with its family's default settings.
# The judge is always chapter 1's deep CNN, {glue:text}`judge_arch`, whichever of chapter 1's
# networks scored highest there: it is chosen for its hidden layer of
# {glue:text}`judge_features` units, a compact feature vector for the distances of sections 3
# and 5 (the other two networks end in thousands of raw feature-map values), not for its
# accuracy, which is {glue:text}`judge_accuracy:.2%` on this run's test images. The figures
# below are drawn from the three loaded models: what each keeps of an image is the orange
# part, a vector of `latent_size` numbers, a vector drawn from (μ, σ), or two grids of codes.

# %%
run = chapter.run  # the seed, the device and the store, for every training call
models, origin = {}, []
for name in FAMILIES:
    models[name], found = families.load_family(
        name, data, latent_size=latent_size, epochs=epochs, temperature=temperature,
        run=run)
    origin += found
judged = families.judge(data, epochs=judge_epochs, batch_size=judge_batch_size,
                        lr=judge_lr, run=run)
judge = judged.model
display(pd.DataFrame(origin).drop(columns="checkpoint"))  # no file names on the page
lead_figure(diagrams.draw_all({FAMILIES[name].title: diagrams.architecture(model)
                               for name, model in models.items()}))

# %% [markdown]
# ### What each model is
#
# Before any score, the networks themselves: the three families and VQ-VAE-2's two priors,
# with the parameters each trains by gradient (VQ-VAE-2's codebooks learn by EMA and are not
# counted), the loss it was trained on, its epochs and batch size, what it saw of the labels,
# and how this chapter scores it. Every entry is read from the loaded models and their
# checkpoints, so the table changes with whatever the chapters trained.

# %%
recipes = {row["model"]: compare.stored_recipe(run.store.folder / row["checkpoint"])
           for row in origin}  # the training settings stored in each checkpoint
fairness = compare.fairness_table(models, recipes)
fairness

# %% [markdown]
# Among the three families, {glue:text}`sizes_text`; {glue:text}`loss_text`. So none of the
# comparisons below is between models that differ only in their code: each difference is
# the code, the network and the loss at once, and section 1's same-backbone models are the
# one place where only the bottleneck changes.

# %% [markdown]
# ## 1. Reconstruction
#
# Every test image goes through each model's latent and back. We report the mean squared error
# per pixel, pooled over every pixel of every image of the **whole** test set, and the peak
# signal-to-noise ratio of that one pooled error,
# $\mathrm{PSNR} = 10 \log_{10}(1/\mathrm{MSE})$ in decibels (pixels in $[0, 1]$; higher is
# better): the logarithm of the mean error, not a mean of per-image PSNRs (that mean would be
# larger, since $-\log$ is convex, and would reward a few near-perfect images). The VAE
# reconstructs from its posterior mean μ, without sampling.

# %% tags=["nbval-check-output"]
rows = []
for name, model in models.items():
    scores = reconstruction_scores(model, test_x, dev)
    chapter.record_all(name, scores, glue="{metric}_{model}")  # glued: test_mse_ae, ...
    rows.append({"model": name, **scores})
recon_table = pd.DataFrame(rows).set_index("model")
recon_table.round(5)

# %%
shown = one_per_class(test_y, data.classes)
grid = torch.cat([test_x[shown]] + [batched(m.reconstruct, test_x[shown], dev)
                                    for m in models.values()])
plots.image_grid(grid, len(shown), row_labels=["input", *models],
                 col_labels=[data.classes[k] for k in test_y[shown]],
                 title="One test image per class (top) and its three reconstructions");

# %% [markdown]
# The lowest reconstruction error on this run belongs to **{glue:text}`best_recon`**
# (AE {glue:text}`test_mse_ae:.4f`, VAE {glue:text}`test_mse_vae:.4f`, VQ-VAE-2
# {glue:text}`test_mse_vqvae2:.4f`; PSNR {glue:text}`psnr_ae:.1f`,
# {glue:text}`psnr_vae:.1f` and {glue:text}`psnr_vqvae2:.1f` dB). {glue:text}`recon_verdict`
#
# This is no capacity-matched race, and not only because of the codes. The codes differ: the
# AE and the VAE keep {glue:text}`code_numbers` real numbers per image, VQ-VAE-2 two grids of
# {glue:text}`vq_codes` codes, at most {glue:text}`vq_bits` bits (positions × log₂ K; section
# 5 below sets it beside every code size of chapter 2). The networks and their losses differ
# too (the table above): {glue:text}`sizes_text`. And the losses price what a code carries
# differently: the AE's loss charges nothing for it, VQ-VAE-2's caps it (log₂ K per position)
# without charging for it, and the VAE's KL term charges for every nat by which its posterior
# departs from the prior.
#
# ### Same backbone, another bottleneck
#
# Between the AE's code and VQ-VAE-2's, two things change at once: the code's *layout* (one
# vector for the whole image, against grids with one vector per region) and its *kind* (real
# numbers, against indices into a codebook). To tell them apart we train VQ-VAE-2's own
# encoders and decoders twice more, with chapter 4's recipe, the same grids and the same
# $D$ = {glue:text}`vq_dim` channels per position, and change only the bottleneck (the
# projects this book grew from built their AE and VAE on the VQ-VAE backbone the same way):
#
# - **continuous**: no quantiser, the maps pass to the decoders as real numbers: an
#   autoencoder with a spatial latent, trained on the per-pixel MSE alone;
# - **gaussian**: each position's $D$ channels are a diagonal Gaussian
#   $q(z \mid x) = \mathcal{N}(\mu, \sigma^2)$, sampled in training and read at $\mu$
#   for reconstruction (as the VAE above), with a KL term to $\mathcal{N}(0, I)$ summed over
#   positions and channels: a VAE with a spatial latent.
#
# The Gaussian model's loss is its negative ELBO with a Gaussian decoder of fixed standard
# deviation $\sigma$ = {glue:text}`vq_sigma` on $N$ pixels, rescaled by $2\sigma^2/N$ so
# that it is a per-pixel MSE like VQ-VAE-2's (one learning rate serves both):
#
# $$ \begin{aligned}
#    \frac{2\sigma^2}{N}\Big(\sum_{\text{pixels}} \frac{(x - \hat x)^2}{2\sigma^2}
#    + \mathrm{KL}\Big) &= \frac{1}{N} \lVert x - \hat x \rVert^2 \\
#    &\quad + \frac{2\sigma^2}{N}\, \mathrm{KL} . \end{aligned} $$
#
# Both keep {glue:text}`vq_floats_spatial` real numbers per image, more than the image's
# {glue:text}`n_pixels` pixels: nothing but the KL term (in the Gaussian model) limits what
# they carry.

# %%
vq = models["vqvae2"].config  # chapter 4's model: its encoders, decoders and grids
backbone = {key: getattr(vq, key)
            for key in ("width", "res_blocks", "res_channels", "embed_dim")}
vqvae2s = FAMILIES["vqvae2"]
same_backbone = {}
for bottleneck in ("continuous", "gaussian"):
    trained = families.train(vqvae2s, data, *vqvae2s.recipe(
        data, epochs=vq_epochs, batch_size=vq_batch_size, lr=vq_lr,
        bottleneck=bottleneck, **backbone), run=run)
    print(f"{bottleneck}: {trained.status}")
    same_backbone[bottleneck] = trained.model
rows = []
for name, model in same_backbone.items():  # glued: test_mse_continuous, ...
    scores = reconstruction_scores(model, test_x, dev)
    chapter.record_all("vqvae2", scores, setting=f"bottleneck={name}",
                       glue=f"{{metric}}_{name}")
    rows.append({"model": f"VQ-VAE-2 backbone, {name}", **scores})
backbone_table = pd.concat([recon_table, pd.DataFrame(rows).set_index("model")])
# the Gaussian model's rate (section 6) and its error decoded from one draw of q(z | x)
spatial_rd = rates.spatial_vae_rate_distortion(same_backbone["gaussian"], test_x, dev,
                                               seed=seed)
backbone_table.round(5)

# %%
same = [models["vqvae2"], *same_backbone.values()]
grid = torch.cat([test_x[shown]]
                 + [batched(m.reconstruct, test_x[shown], dev) for m in same])
plots.image_grid(grid, len(shown),
                 row_labels=["input", "VQ-VAE-2", "continuous", "gaussian (μ)"],
                 col_labels=[data.classes[k] for k in test_y[shown]],
                 title="One backbone, three bottlenecks (rows)");

# %% [markdown]
# The figure shows one test image per class through VQ-VAE-2's backbone with each of the
# three bottlenecks. {glue:text}`gap_sentence`. {glue:text}`spatial_vae_text`.
# {glue:text}`sampled_text`.

# %% [markdown]
# ## 2. What does one latent unit control?
#
# We take one test image and change a single unit of its latent: one coordinate of the AE's
# or the VAE's code (by −2 to +2 standard deviations of that coordinate over the test set), or
# one code index of VQ-VAE-2's top grid (replaced by the most used codes). A coordinate can
# be inactive (chapter 3: a VAE leaves some at the prior), so the rows show the four that
# matter most: the VAE's of largest mean KL, the AE's of largest spread. Under each picture,
# a number says how much the image changed.

# %%
x0 = test_x[shown[0]]
steps = torch.linspace(-2, 2, 7)
effects = {}
for name, model in models.items():
    if hasattr(model, "edit_code"):  # a grid of discrete codes: swap one code
        with torch.no_grad():
            q = model.quantise(x0[None].to(dev))
        centre = (q.codes_top.shape[1] // 2, q.codes_top.shape[2] // 2)
        images = model.edit_code(q.codes_top[0], q.codes_bottom[0], "top", centre,
                                 compare.most_used_codes(model, test_x, dev, 7)).cpu()
        box = code_box(model.config, centre, "top")
        effects[name] = compare.unit_effect(
            images, batched(model.reconstruct, x0[None], dev)[0], box)
        what = "the top code at the centre replaced by each of the 7 most used codes"
    else:  # a vector: move one coordinate by −2 … +2 of its spread on the test set
        spread = batched(model.encode, test_x, dev).std(0)  # (D,)
        dims, ranked_by = compare.ranked_units(model, test_x, dev, 4)
        z0 = batched(model.encode, x0[None], dev)[0]
        rows = [latent.traverse(model.decode, z0, steps * spread[d], dims=[int(d)],
                                device=dev)[0] for d in dims]
        images = torch.cat(rows)
        change = [compare.unit_effect(row, row[3])["mean_change"] for row in rows]
        effects[name] = {"mean_change": sum(change) / len(change)}  # against 0σ
        what = (f"coordinates {', '.join(str(int(d) + 1) for d in dims)} (largest "
                f"{ranked_by}; rows) moved by −2σ … +2σ (columns)")
    plots.image_grid(images, 7, title=f"{name}: one latent unit changed: {what}",
                     size=0.9)
pd.DataFrame(effects).T.rename(columns={"mean_change": "mean |pixel change|",
                                        "share_inside": "share inside the code's cell"})

# %% [markdown]
# Moving one of the AE's four most spread coordinates through −2σ … +2σ changes a pixel by
# {glue:text}`change_ae:.3f` on average over the row (against the unchanged middle column),
# one of the VAE's four coordinates of largest KL by {glue:text}`change_vae:.3f`. Replacing VQ-
# VAE-2's centre top code changes a pixel by
# {glue:text}`change_vqvae2:.2g` on average, and {glue:text}`share_vqvae2:.0%` of that change
# falls inside the {glue:text}`vq_cell` pixels the code sits over: {glue:text}`locality_text`.
# Whether one coordinate of the AE or the VAE stands for one property of the digit (slant,
# width) is not what these pictures measure, and at β = 1 nothing in the VAE's loss asks for
# it; without labels nothing can guarantee it {cite:p}`locatello2019challenging`.
#
# ## 3. Interpolation
#
# The straight line between two test images in each latent space, decoded, beside the same
# blend in pixel space. Do the frames in between look like real digits? The judge's
# top-class confidence cannot say: a classifier trained on real digits must spread its
# probability over the classes it knows, and nothing stops it from being sure of two faint
# digits on top of each other (chapter 3 counts how often it is, on its pixel blends). A
# distance between *sets* of images can: we take many random pairs
# of test images, decode the frames strictly between the ends of each, and measure the
# Fréchet distance (section 5 below) of these frames to as many real test images, in the
# judge's feature space. All inner frames together make a lenient test: the frames near
# $t = 0$ and $t = 1$ are nearly the end images, real digits, and pull the distance towards
# that of real images. The test is the **middle frame**, $t = 0.5$, the furthest from both
# ends: for it we draw a fresh set of random pairs, one middle frame each, and measure its
# Fréchet distance the same way. Real training images, as many, measured the same way, show
# what two sets of real images score at each sample size.

# %%
ends = test_x[[first_of_class(test_y, data.classes, interpolation_from),
               first_of_class(test_y, data.classes, interpolation_to)]]
paths = {"pixels": latent.pixel_blend(ends[0], ends[1], 9)}
for name, model in models.items():
    z_a, z_b = batched(model.encode, ends, dev)
    paths[name] = latent.interpolate(model.decode, z_a, z_b, 9, device=dev)
plots.image_grid(torch.cat(list(paths.values())), 9, row_labels=list(paths),
                 title=f"From a {interpolation_from} to a {interpolation_to}: "
                       "straight lines in four spaces");
pairs = min(interpolation_pairs, len(test_x) // 9)  # 7 reference images a pair
inner, others = compare.interpolation_frames(models, test_x, pairs, 9, dev, seed=seed)
path_distance = compare.frechet_to_real(judge, inner, others, data.train.images, dev,
                                        seed=seed)
# three steps: the one inner frame is t = 0.5; one reference image a pair
middle_pairs = min(interpolation_pairs, len(test_x) // 3)
middle, middle_others = compare.interpolation_frames(models, test_x, middle_pairs, 3,
                                                     dev, seed=seed)
middle_distance = compare.frechet_to_real(judge, middle, middle_others,
                                          data.train.images, dev, seed=seed)
pd.DataFrame({"all inner frames": path_distance,
              "middle frame, t = 0.5": middle_distance}
             ).rename_axis("Fréchet distance to real test images")

# %% [markdown]
# Over {glue:text}`n_pairs` random pairs ({glue:text}`n_inner` inner frames per space), all
# inner frames together sit at a Fréchet distance of {glue:text}`path_pixels:.1f` (pixel
# blend), {glue:text}`path_ae:.1f` (AE), {glue:text}`path_vae:.1f` (VAE) and
# {glue:text}`path_vqvae2:.1f` (VQ-VAE-2) from real test images, real training images at
# {glue:text}`path_floor:.1f`. The middle frames alone, over {glue:text}`n_middle_pairs`
# pairs, sit at {glue:text}`middle_pixels:.1f`, {glue:text}`middle_ae:.1f`,
# {glue:text}`middle_vae:.1f` and {glue:text}`middle_vqvae2:.1f`, real images at
# {glue:text}`middle_floor:.1f`. {glue:text}`path_verdict`
#
# ### Try it: one slider, three code spaces, and your own digit
#
# The three models run below in the page. The slider blends the codes of the two test
# images of the figure above, each family in its own code space, so the three pictures show
# the same fraction of the way. Move it slowly around the middle: where does each family
# switch from one digit to the other, and which one passes through shapes that are no digit?
# Then draw a digit on the pad (it is cropped, scaled and centred as MNIST's digits were):
# each model reconstructs it, and the cross marks where the VAE puts it among the test
# codes, on the two directions along which those codes vary most (their principal axes).
# Then draw something that is no digit, a letter say: which model copies it, and which one
# turns it into a digit it knows?

# %%
explorers.compare_families(models, test_x, test_y, data.classes, ends,
                           [interpolation_from, interpolation_to], "05_comparison")

# %% [markdown]
# ## 4. What a code is worth: classifying with few labels
#
# None of the three encoders saw a label while training. VQ-VAE-2's PixelCNN priors did
# (chapter 4 trains them on the code grids with their labels, {glue:text}`label_dropout:.0%`
# of the labels hidden), but the codes below come from its encoder alone, trained before the
# priors and without labels. Does a code still make the class easy to read? With every label
# available the question is nearly empty: on this run a classifier on the
# {glue:text}`n_pixels` raw pixels already reaches {glue:text}`all_pixels:.1%` with
# {glue:text}`all_label` (the table below). The sharper question is the one
# {cite:t}`kingma2014semi` asked: **how few
# labels** does a classifier need on top of a code? We draw class-balanced labelled sets of
# `labels_per_class` training images (`label_repeats` draws each, the same images for every
# input), fit two small classifiers on them and score them on the whole test set:
#
# - **logistic regression** (a linear probe) and **$k$-nearest neighbours**;
# - each with a fair protocol: whether to standardise the inputs, the regularisation $C$ or
#   the $k$ are chosen by {glue:text}`cv_folds`-fold cross-validation **on the labelled
#   images only** (on {glue:text}`cv_max` of them when there are more), never on the test
#   set, separately for every input;
# - inputs: the raw pixels, PCA of the pixels with as many components as the AE's code, and
#   each model's code (the AE's code, the VAE's posterior mean μ, VQ-VAE-2's two quantised
#   maps flattened).

# %%
train_x, train_y = data.train.images, data.train.labels
inputs = {"pixels": (train_x.flatten(1), test_x.flatten(1)),
          "pca": efficiency.pca_codes(train_x, test_x, latent_size, seed=seed)}
inputs.update({name: (batched(m.encode, train_x, dev), batched(m.encode, test_x, dev))
               for name, m in models.items()})
smallest_class = int(torch.bincount(train_y).min())
counts = [k for k in labels_per_class if k is None or k <= smallest_class]
if len(counts) < len(labels_per_class):
    print(f"labels per class above {smallest_class} (the smallest class) are left out")
curve = efficiency.label_efficiency(
    inputs, train_y, test_y, labels_per_class=counts, repeats=label_repeats,
    spread_at=[k for k in spread_at if k in counts], spread_neighbors=spread_neighbours,
    seed=seed, store=run.store)  # computed once, then read from the cache
for row in curve.itertuples():
    chapter.record(row.model, row.metric, row.value, setting=row.setting)
efficiency.label_efficiency_plot(
    curve, f"Test accuracy against labelled images per class ({data.name}; "
           "bands: ±1 std over draws)")
efficiency.curve_table(curve).round(4)

# %% [markdown]
# **Reading the curve.** With {glue:text}`few` labelled images per class (mean of
# {glue:text}`n_draws` draws), {glue:text}`few_verdict`. With {glue:text}`all_label`,
# {glue:text}`all_verdict`; {glue:text}`meet_text`. {glue:text}`scarce_text`
#
# **Using the unlabelled images too.** Kingma et al.'s M1 model classified VAE features with
# a transductive SVM that also saw the unlabelled images. We do the same with label spreading
# {cite:p}`zhou2004learning` on a {glue:text}`few`-labels-per-class set: every training *and test*
# code is a node of one $k$-nearest-neighbour graph (so this is transductive, like M1+TSVM:
# the test codes take part in the spreading, their labels never do), the labels flow along
# the graph, and the test codes are scored on the label they end with:
# {glue:text}`spread_text`.
#
# **Beside published numbers.** {cite:t}`kingma2014semi` (table 1) report on MNIST with 100
# labels (10 per class) a test error of 25.8 % for a neural network on the raw pixels and
# 11.8 % (88.2 % accuracy) for M1+TSVM, their VAE features with a transductive SVM. The small
# seed project this book grew from probed its models with every label and reported AE 93 %,
# VAE 87.5 % and VQ-VAE 81 %; with {glue:text}`all_label` this run measures (best of the two
# probes)
# AE {glue:text}`all_ae:.1%`, VAE {glue:text}`all_vae:.1%` and VQ-VAE-2
# {glue:text}`all_vqvae2:.1%`, against {glue:text}`all_pixels:.1%` for the pixels. The order
# can differ from the seed's because the probe protocol differs (ours tunes each input's
# classifier by cross-validation, and reads VQ-VAE-2's whole quantised maps rather than a
# pooled vector) and because a full-label probe mostly measures how linear the classes lie,
# which a reconstruction loss never asked for (chapter 2).
#
# ## 5. Generation
#
# Each model makes new images from its own idea of the code distribution, **without a
# label**:
#
# - **AE**: codes drawn from a Gaussian fitted to the training codes (an AE has no prior; the
#   fitted Gaussian is its best chance; $\mathcal{N}(0, I)$ is scored too);
# - **VAE**: codes drawn from its prior $\mathcal{N}(0, I)$;
# - **VQ-VAE-2**: top codes from the top PixelCNN, bottom codes from the bottom PixelCNN given
#   the top, both given their "no label" embedding (chapter 4 trains the priors with label
#   dropout, so they also model the code grids without a class; they saw "no label" on
#   {glue:text}`label_dropout:.0%` of their training images, and the code lengths at the end
#   of this chapter measure how well they learnt it).
#
# VQ-VAE-2 can also sample **given a class label** (drawn uniformly). That row is kept apart
# and labelled conditional: a label is information the AE and the VAE never get.
#
# The judge (chapter 1's {glue:text}`judge_arch`) scores the samples three ways, all on its
# penultimate features of the samples and of the whole test set: the **Fréchet distance**
# (the FID of {cite:t}`heusel2017gans`, with our classifier in place of Inception; lower is
# better), the **kernel inception distance** (KID) of {cite:t}`binkowski2018demystifying`
# on the same features (lower is better), and its mean top-class **confidence**. Each number
# is the mean ± standard deviation over `fid_draws` = {glue:text}`n_fid_draws` seeded draws
# of {glue:text}`n_samples_used` images; the reference is the same for every draw, so the
# spread is that of the samples. The floor is real **training** images,
# {glue:text}`n_fid_draws` disjoint draws of as many, scored against the same reference:
# what a generator that returned the images it learnt from would score at this sample size.
#
# Three cautions before reading the numbers. They are **not comparable with published FID**:
# the features are our small classifier's, not Inception's. The Fréchet distance is **biased
# upwards at small sample sizes** ({glue:text}`n_samples_used` images a draw here; published
# FIDs use 50,000), and its bias is not one number the floor could measure and subtract: it
# depends on each generator's own feature covariance {cite:p}`chong2020effectively`, so two
# models scored at the same sample size can be biased by different amounts. The KID has no
# such bias, which is why it stands beside the Fréchet distance. And the features are a
# *classifier's*, so they reward samples whose class is easy to tell, which favours a
# generator that is told the class: that is why the comparison is made without labels and
# VQ-VAE-2's class-conditional row stands apart.
#
# **Where the formula comes from.** Fit a Gaussian to each set of features: means
# $\mu_1, \mu_2$, covariances $\Sigma_1, \Sigma_2$. The Fréchet (2-Wasserstein) distance
# between two Gaussians is the smallest expected squared distance between paired draws,
# over all ways of pairing them; for Gaussians it has a closed form
# {cite:p}`dowson1982frechet`,
#
# $$ d^2 = \lVert \mu_1 - \mu_2 \rVert^2
#    + \operatorname{Tr}\big(\Sigma_1 + \Sigma_2 - 2\,(\Sigma_1 \Sigma_2)^{1/2}\big). $$
#
# The first term compares where the two sets sit, the second how they spread. In one dimension
# it is $(\mu_1 - \mu_2)^2 + (\sigma_1 - \sigma_2)^2$: identical means are not enough, the
# samples must vary as much as the data do. With $n$ samples both moments are estimates, and
# the noise in $\hat\Sigma$ adds a positive amount on average, an amount that depends on
# $\Sigma$ itself {cite:p}`chong2020effectively`: the floor shows it for real images, not for
# each generator.
#
# **The KID** compares the two sets without fitting Gaussians: it is the squared maximum mean
# discrepancy between them under the cubic polynomial kernel $k(a, b) = (a^\top b / F + 1)^3$
# on the $F$ features, estimated without bias from $n$ samples $a_i$ and the $m$ test
# images' features $b_j$,
#
# $$ \begin{aligned}
#    \mathrm{KID} = {}& \frac{\sum_{i \ne i'} k(a_i, a_{i'})}{n(n-1)}
#    + \frac{\sum_{j \ne j'} k(b_j, b_{j'})}{m(m-1)} \\
#    & - \frac{2 \sum_{i, j} k(a_i, b_j)}{n m} . \end{aligned} $$
#
# Its expected value is 0 for two samples of one distribution at any sample size, so a single
# draw can come out slightly below zero.

# %%
n_drawn = min(n_samples, len(train_x) // fid_draws)  # the real draws must be disjoint
if n_drawn < n_samples:
    print(f"{n_drawn} images a draw: {fid_draws} disjoint draws of {n_samples} "
          f"do not fit in the {len(train_x)} training images")
reference_features = classifier_features(judge, test_x, dev)  # the whole test set
reference = gaussian_stats(reference_features)
real = compare.disjoint_draws(train_x, n_drawn, fid_draws, seed=seed)


def normal_codes_ae(i):  # the AE decoding N(0, I) codes, which it was never fitted to
    generator = torch.Generator().manual_seed(seed + i)
    return batched(models["ae"].decode, torch.randn(n_drawn, latent_size,
                                                    generator=generator), dev)


# (model, setting) → draw i's images; glued as fid_cnn_<name>, kid_cnn_std_<name>, ...
sets = {("train images", "floor"): real.__getitem__}
for name, model in models.items():
    sets[name, "unconditional"] = (
        lambda i, model=model: compare.draw_samples(model, n_drawn, seed + i))
sets["ae", "unconditional, N(0,I)"] = normal_codes_ae
sets["vqvae2", "conditional"] = lambda i: compare.draw_samples(
    models["vqvae2"], n_drawn, seed + i, conditional=True)
glued_as = {("train images", "floor"): "floor",
            ("vqvae2", "conditional"): "vqvae2_label",
            **{(name, "unconditional"): name for name in models}}
rows, shown_samples = [], {}
for (name, setting), draw in sets.items():
    drawn = compare.frechet_over_draws(judge, draw, reference, fid_draws, dev,
                                       reference_features=reference_features)
    key = glued_as.get((name, setting))
    chapter.record_all(name, drawn.scores, setting=setting,
                       glue=key and "{metric}_" + key)
    rows.append({"samples": name, "setting": setting, **drawn.scores})
    shown_samples[f"{name}\n{setting}"] = drawn.first[:12]
sample_table = pd.DataFrame(rows).set_index(["samples", "setting"])
columns = min(len(row) for row in shown_samples.values())  # 12, or n_samples if fewer
plots.image_grid(torch.cat([row[:columns] for row in shown_samples.values()]), columns,
                 row_labels=list(shown_samples), size=0.8,
                 title="The first draw of each row: real training images, samples "
                       "without a label, VQ-VAE-2's given one");
sample_table.drop(columns="fid_draws").round(3)

# %% [markdown]
# The images are the first draw's first twelve of each row of the table. Without a label,
# the Fréchet distances are AE (fitted Gaussian) {glue:text}`fid_cnn_ae:.1f` ±
# {glue:text}`fid_cnn_std_ae:.1f`, VAE {glue:text}`fid_cnn_vae:.1f` ±
# {glue:text}`fid_cnn_std_vae:.1f` and VQ-VAE-2 {glue:text}`fid_cnn_vqvae2:.1f` ±
# {glue:text}`fid_cnn_std_vqvae2:.1f`, against a floor of {glue:text}`fid_cnn_floor:.1f` ±
# {glue:text}`fid_cnn_std_floor:.1f` for real training images; the judge's mean confidence
# is {glue:text}`sample_confidence_ae:.2f`, {glue:text}`sample_confidence_vae:.2f` and
# {glue:text}`sample_confidence_vqvae2:.2f`. {glue:text}`fid_verdict`
#
# The KIDs are {glue:text}`kid_cnn_ae:.3g` ± {glue:text}`kid_cnn_std_ae:.2g` (AE),
# {glue:text}`kid_cnn_vae:.3g` ± {glue:text}`kid_cnn_std_vae:.2g` (VAE) and
# {glue:text}`kid_cnn_vqvae2:.3g` ± {glue:text}`kid_cnn_std_vqvae2:.2g` (VQ-VAE-2), against
# {glue:text}`kid_cnn_floor:.3g` ± {glue:text}`kid_cnn_std_floor:.2g` for real training
# images. {glue:text}`kid_verdict`
#
# Given a class label, VQ-VAE-2's samples are at {glue:text}`fid_cnn_vqvae2_label:.1f` ±
# {glue:text}`fid_cnn_std_vqvae2_label:.1f` (confidence
# {glue:text}`sample_confidence_vqvae2_label:.2f`): {glue:text}`conditional_text`

# %% [markdown]
# ## 6. The book's results table
#
# Every chapter wrote the numbers it measured to a tidy table, one row per number. Here they
# are gathered into one, the file below is offered for download, and the comparison's numbers
# are drawn side by side.

# %%
chapters = ["01_cnn_warmup", "02_autoencoder", "03_vae", "04_vqvae2", "05_comparison"]
everything = gather(results_dir, chapters, strict=False)
everything.to_csv(f"{results_dir}/all_results.csv", index=False)
everything[everything.dataset == data.name].pivot_table(
    index=["chapter", "model", "setting"], columns="metric", values="value"
).round(4).fillna("")

# %% [markdown]
# The whole table ({glue:text}`n_results` numbers, every data set this results folder has
# seen) is saved as `all_results.csv` in the results folder, and can be downloaded here:

# %%
compare.summary_figure(chapter.results.frame,
                       title=f"AE, VAE and VQ-VAE-2 on {data.name}")
download_link(everything, "all_results.csv")

# %% [markdown]
# ### One VQ-VAE-2 against a whole sweep of autoencoders
#
# The gathered table also holds what chapter 2 measured: one autoencoder per code size, from
# a handful of numbers up. The comparisons above used one of them, the one with a code of
# `latent_size` numbers; here VQ-VAE-2's test error is set beside all of them. Its code for one
# image is {glue:text}`vq_codes` integers (its top grid is
# {glue:text}`vq_top`×{glue:text}`vq_top`, its bottom grid
# {glue:text}`vq_bottom`×{glue:text}`vq_bottom`), each the index of one of $K$ codes, so it
# takes {glue:text}`vq_bits` bits; an autoencoder's code of $D$ numbers stored as 32-bit floats
# takes $32\,D$.

# %%
ae_sweep = select(everything, dataset=data.name, chapter="02_autoencoder", model="ae",
                  metric="test_mse")
ae_sweep = pd.DataFrame({
    "code_size": ae_sweep["setting"].str.removeprefix("latent=").astype(int),
    "ae": ae_sweep["value"], "vqvae2": recon_table.loc["vqvae2", "test_mse"],
}).sort_values("code_size")
if len(ae_sweep):
    plots.sweep_plot(ae_sweep, "code_size",
                     {"ae": "autoencoder of that code size (chapter 2)",
                      "vqvae2": "VQ-VAE-2 (chapter 4)"},
                     title=f"Test reconstruction error ({data.name})",
                     ylabel="test MSE per pixel", log_y=True)
else:
    print(f"Chapter 2 has not written results for {data.name} to {results_dir}.")
ae_sweep.set_index("code_size").rename(columns={"ae": "autoencoder test MSE",
                                                "vqvae2": "VQ-VAE-2 test MSE"}).round(5)

# %% [markdown]
# {glue:text}`sweep_text` Neither side of this comparison is quite fair to the other. The
# autoencoder has to rebuild the whole image from a few real numbers; VQ-VAE-2 says, region by
# region, which of its learnt codes goes where, and its grids grow with the image. Counted in
# bits, its {glue:text}`vq_bits` bits are as many as an autoencoder's code of about
# {glue:text}`vq_floats` numbers takes in storage. Storage is not information: a deterministic
# code of real numbers has no rate of its own (a decoder could read arbitrarily many bits
# from one real number, and nothing in the AE's loss charges for them); only the VAE's KL term
# puts a price, in nats, on what its code carries.

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
glue("best_recon", recon_table["test_mse"].idxmin())
glue("judge_arch", judge.config.arch)
glue("judge_features", judge.config.fc_width)
chapter.record(judge.config.arch, "test_accuracy", families.score_on_test(
    families.CLASSIFIER, judged, data, run=run)["test_accuracy"], setting="judge",
    glue="judge_accuracy")
for name, row in fairness.iterrows():  # the priors as VQ-VAE-2's, setting prior=<level>
    model, setting = (("vqvae2", f"prior={name[7:-1]}") if name.startswith("prior (")
                      else (name, ""))
    chapter.record(model, "parameters", row["parameters"], setting=setting)
    if not pd.isna(row["epochs"]):
        chapter.record(model, "epochs", row["epochs"], setting=setting)
glue("sizes_text", sentences.network_sizes_sentence(
    {name: int(fairness.loc[name, "parameters"]) for name in models}))
glue("loss_text", sentences.losses_sentence(
    {name: fairness.loc[name, "training loss"] for name in models}))
glue("vq_dim", vq.embed_dim)
glue("vq_sigma", f"{same_backbone['gaussian'].config.decoder_std:g}")
glue("vq_floats_spatial", f"{vq.code_length:,}")
glue("n_pixels", f"{test_x[0].numel():,}")
by_model = {name: backbone_table.loc[name, "test_mse"] for name in models}
by_model.update({name: backbone_table.loc[f"VQ-VAE-2 backbone, {name}", "test_mse"]
                 for name in same_backbone})
glue("gap_sentence", compare.spatial_gap_sentence(
    by_model["ae"], by_model["continuous"], by_model["vqvae2"]))
glue("spatial_vae_text", compare.spatial_vae_sentence(
    by_model["vae"], by_model["gaussian"], by_model["vqvae2"]))
chapter.record("vqvae2", "test_mse_sampled", spatial_rd["sampled_mse"],
               setting="bottleneck=gaussian", glue="test_mse_sampled_gaussian")
for level in ("top", "bottom", "total"):
    chapter.record("vqvae2", "rate_bits", spatial_rd[level],
                   setting=f"bottleneck=gaussian,{level}", glue=f"rate_spatial_{level}")
glue("sampled_text", compare.sampled_sentence(
    by_model["gaussian"], spatial_rd["sampled_mse"], spatial_rd["top"],
    spatial_rd["total"]))
glue("recon_verdict", sentences.measured_order("the test MSE",
                                                recon_table["test_mse"].to_dict()))
for name, effect in effects.items():
    chapter.record(name, "unit_change", effect["mean_change"], glue=f"change_{name}")
chapter.record("vqvae2", "unit_share_inside", effects["vqvae2"]["share_inside"],
               glue="share_vqvae2")
glue("vq_cell", f"{box[0].stop - box[0].start}×{box[1].stop - box[1].start}")
vector_change = min(effects["ae"]["mean_change"], effects["vae"]["mean_change"])
if effects["vqvae2"]["mean_change"] < 0.1 * vector_change:
    locality = ("a top code barely matters to the image on this run, less than a tenth of "
                "what one AE or VAE coordinate does: with the bottom codes held fixed, the "
                "bottom grid carries the strokes (chapter 4's code maps), so where the little "
                "change falls says little")
elif effects["vqvae2"]["share_inside"] > 0.5:
    locality = ("most of a top code's effect stays in its own region, though the decoder "
                "spreads some past it")
else:
    locality = ("on this run most of the change lands outside the code's own cell: the "
                "decoder's receptive field spreads a top code's influence over its neighbours")
glue("locality_text", locality)
glue("n_pairs", pairs)
glue("n_inner", pairs * 7)
for name, value in path_distance.items():
    real = name.startswith("real")
    chapter.record("train images" if real else name, "interpolation_fid", value,
                   setting="floor" if real else "", glue="path_floor" if real else f"path_{name}")
glue("n_middle_pairs", middle_pairs)
middle_floor = middle_distance.pop("real images (floor)")
chapter.record("train images", "interpolation_fid_middle", middle_floor, setting="floor",
               glue="middle_floor")
for name, value in middle_distance.items():  # pixels and each family, at t = 0.5
    chapter.record(name, "interpolation_fid_middle", value, glue=f"middle_{name}")
glue("path_verdict", sentences.middle_frame_sentence(middle_distance, middle_floor))
few = 10 if 10 in counts else counts[0]
most = None if None in counts else max(counts)  # the curve's right end
glue("few", few)
glue("n_draws", label_repeats)
glue("cv_folds", probes.CV_FOLDS)
glue("cv_max", f"{probes.CV_MAX:,}")
glue("all_label", "every label" if most is None else f"{most} labels per class")
glue("few_verdict", efficiency.verdict(curve, few))
glue("all_verdict", efficiency.verdict(curve, most))
glue("meet_text", efficiency.meet_sentence(curve))
lead = {k: efficiency.best_by_input(curve, k) for k in (few, most)}  # best accuracy per input
lead = {k: best[["ae", "vae", "vqvae2"]].max() - best[["pixels", "pca"]].max()
        for k, best in lead.items()}  # the best code's lead over the best pixel input
glue("scarce_text", sentences.scarce_labels_sentence(lead[few], lead[most]))
for name, value in efficiency.best_by_input(curve, most).items():
    glue(f"all_{name}", value)
glue("spread_text", efficiency.spread_sentence(curve, few, spread_neighbours))
unconditional = sample_table.xs("unconditional", level="setting").loc[list(models)]
glue("fid_verdict", sentences.measured_order("the Fréchet distance",
                                              unconditional["fid_cnn"].to_dict(),
                                              unconditional["fid_cnn_std"].to_dict()))
glue("kid_verdict", sentences.measured_order("the KID", unconditional["kid_cnn"].to_dict(),
                                             unconditional["kid_cnn_std"].to_dict()))
labelled = sample_table.loc[("vqvae2", "conditional")]
free = sample_table.loc[("vqvae2", "unconditional")]
apart = not compare.overlapping({"label": labelled["fid_cnn"], "none": free["fid_cnn"]},
                                {"label": labelled["fid_cnn_std"],
                                 "none": free["fid_cnn_std"]})
if labelled["fid_cnn"] < free["fid_cnn"]:
    conditional_text = ("closer to the test images than without one" + (
        ", by more than the two standard deviations added (a judge whose features "
        "separate classes rewards being told the class)." if apart else
        ", but within the two standard deviations added: the draws do not separate them."))
else:
    conditional_text = ("no closer to the test images than without one on this run" + (
        "." if apart else ", and within the two standard deviations added."))
glue("conditional_text", conditional_text)
glue("label_dropout", models["vqvae2"].priors.top.config.label_dropout)
glue("n_fid_draws", fid_draws)
glue("n_results", len(everything))
glue("code_numbers", latent_size)
glue("n_samples_used", n_drawn)
glue("vq_top", vq.top_grid)
glue("vq_bottom", vq.bottom_grid)
glue("vq_codes", vq.top_grid ** 2 + vq.bottom_grid ** 2)
vq_bits = rates.storage_bits(vq)
glue("vq_bits", round(vq_bits))
glue("vq_floats", round(vq_bits / 32))
vq_mse = recon_table.loc["vqvae2", "test_mse"]
beaten = ae_sweep[ae_sweep["ae"] <= vq_mse]  # the autoencoders at least as good
if ae_sweep.empty:
    sweep_text = (f"Chapter 2 has written no results for {data.name} to this results "
                  "folder, so there is no sweep to set VQ-VAE-2 beside yet.")
else:
    sweep_text = (f"VQ-VAE-2's test MSE of {vq_mse:.4f} is below the autoencoder's at "
                  f"{len(ae_sweep) - len(beaten)} of the {len(ae_sweep)} code sizes; ")
    sweep_text += (f"no autoencoder of the sweep, up to a code of "
                   f"{ae_sweep['code_size'].max()} numbers, reconstructs as well."
                   if beaten.empty else
                   f"the smallest autoencoder that does at least as well has a code of "
                   f"{beaten['code_size'].min()} numbers ({beaten['ae'].iloc[0]:.4f}).")
glue("sweep_text", sweep_text)

# %% [markdown]
# ### What each code costs in bits
#
# Storage is not information. A **rate** is the average length of a code under a model of
# the codes: the bits per image an encoder driven by that model would write
# ({cite:t}`alemi2018fixing` plot every model of a family as a point of rate against
# distortion). Two of our three families have one.
#
# - **The VAE:** its KL term, $\mathbb{E}_x\,\mathrm{KL}(q(z \mid x)\,\|\,p(z))$, divided by
#   $\ln 2$. It is not the information the code carries about the image but an upper bound
#   on it {cite:p}`hoffman2016elbo`,
#
#   $$ \mathbb{E}_x\,\mathrm{KL}(q(z \mid x)\,\|\,p(z)) = I_q(x; z)
#      + \mathrm{KL}(q(z)\,\|\,p(z)), \qquad q(z) = \mathbb{E}_x\, q(z \mid x), $$
#
#   tight only when the codes of all images pooled, the aggregate posterior $q(z)$, follow
#   the prior. And it is a code length only through bits-back coding
#   {cite:p}`hinton1993keeping`: a $z$ drawn from $q(z \mid x)$ costs $-\log p(z)$ to send,
#   and the receiver, who can rebuild $q(z \mid x)$ from it, recovers the $-\log q(z \mid x)$
#   bits of randomness that drew it, a net cost of the KL on average. Chapter 3's β sweep
#   gives one point per β.
# - **VQ-VAE-2:** the length of its code grids under its own priors,
#   $-\log_2 p(c_\text{top} \mid y) - \log_2 p(c_\text{bottom} \mid c_\text{top}, y)$, as
#   an entropy coder driven by the two PixelCNNs would write them. The VAE's receiver is not
#   told the class, so neither is VQ-VAE-2's, and two codes qualify: the grids under the
#   priors' "no label" (learnt in chapter 4 from the images whose label was hidden), or the
#   class sent first, $\log_2 C$ bits for $C$ classes, then the grids given it. Either can
#   be decoded, so the rate is the shorter of the two. Without any prior the grids take their
#   storage, positions × $\log_2 K$.
# - **The AE:** none. Its code is a deterministic vector of real numbers, and nothing in its
#   loss charges for what they carry, so it appears as a line at its distortion. So does
#   VQ-VAE-2's backbone with the continuous bottleneck (section 1), for the same reason.
# - **VQ-VAE-2's backbone with the Gaussian bottleneck:** a VAE, so its KL over $\ln 2$,
#   summed over both grids' positions and channels (the bottom grid's KL at one seeded
#   draw of the top code per image, an unbiased estimate of its expectation).
#
# Distortion is section 1's test MSE per pixel, the same for every model (the Gaussian
# spatial VAE's also from a draw of its posterior, the distortion its ELBO counts).

# %%
rd_sweep = rates.beta_sweep(everything, data.name, latent_size)
vae_bits = rates.vae_rate_bits(models["vae"], test_x, dev)
code_bits = rates.vqvae2_code_bits(models["vqvae2"], test_x, test_y, dev)
shorter = rates.shorter_code(code_bits)  # "unconditional" or "with_class"
vq_rate = code_bits[shorter]  # the shorter of the two codes that need no class
rate_how = "no label" if shorter == "unconditional" else "class sent first"
spatial_bits = spatial_rd["total"]  # measured in section 1
mse = backbone_table["test_mse"]
spatial = {name: mse[f"VQ-VAE-2 backbone, {name}"] for name in same_backbone}
rates.rate_distortion_plot(
    rd_sweep, {"VAE, β = 1 (this chapter's)": (vae_bits, mse["vae"]),
               f"VQ-VAE-2, codes under its priors, {rate_how}":
                   (vq_rate, mse["vqvae2"]),
               "VQ-VAE-2, storage (no prior)": (code_bits["storage"], mse["vqvae2"]),
               "VQ-VAE-2's backbone, Gaussian (a spatial VAE), from μ":
                   (spatial_bits, spatial["gaussian"]),
               "... the same, decoded from a draw of q(z | x)":
                   (spatial_bits, spatial_rd["sampled_mse"])},
    mse["ae"], f"Rate against distortion on the {data.name} test images",
    lines={"VQ-VAE-2's backbone, continuous (no rate)": spatial["continuous"]})
pd.Series({"VAE rate (KL / ln 2)": vae_bits, **{
    f"VQ-VAE-2 {k.replace('_', ' ')}": v for k, v in code_bits.items() if k != "rate"},
    "VQ-VAE-2 rate (the shorter code)": vq_rate,
    "spatial VAE rate (KL / ln 2)": spatial_bits}, name="bits per image").round(1)

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
chapter.record("vae", "rate_bits", vae_bits, glue="rate_vae")
for key, setting in (("top", "top|class"), ("bottom", "bottom|top,class"),
                     ("given_class", "codes|class"), ("with_class", "class+codes"),
                     ("top_unconditional", "top"), ("bottom_unconditional", "bottom|top"),
                     ("unconditional", "codes"), ("storage", "storage")):
    if key in code_bits:
        chapter.record("vqvae2", "rate_bits", code_bits[key], setting=setting,
                       glue=f"rate_vq_{key}")
glue("rate_vq", vq_rate)
glue("rate_vq_how", "with no label" if shorter == "unconditional"
     else "with the class sent first")
top_prior = models["vqvae2"].priors.top.config  # its classes and label dropout
no_label_bits = code_bits.get("unconditional", math.nan)
glue("vq_rate_text", sentences.vq_rate_sentence(no_label_bits, code_bits["with_class"],
                                                top_prior.num_classes))
glue("label_saving", sentences.label_saving_sentence(
    no_label_bits, code_bits["given_class"], top_prior.num_classes, top_prior.label_dropout))
glue("rd_trade",
     "As β grows the VAE's rate falls and its distortion rises: the β values are points "
     "on one trade-off, not better and worse models." if rates.sweep_is_a_trade(rd_sweep)
     else "On this run the β sweep is not a clean trade-off (rate and distortion do not "
     "move in opposite directions at every step), so read its points one by one."
     if len(rd_sweep) > 1 else "Chapter 3's β sweep is not in this results folder yet.")
rate_ratio = vq_rate / vae_bits
mse_ratio = mse["vae"] / mse["vqvae2"]
if rate_ratio > 1 and mse_ratio > 1:
    rd_verdict = (f"VQ-VAE-2's codes cost {rate_ratio:.1f} times the VAE's bits and its "
                  f"test MSE is {mse_ratio:.1f} times lower: its sharper reconstructions are "
                  "bought with bits, not given by discreteness")
elif mse_ratio > 1:
    rd_verdict = (f"VQ-VAE-2 spends fewer bits than the VAE ({1 / rate_ratio:.1f} times "
                  f"fewer) and still has a {mse_ratio:.1f} times lower test MSE: on this run "
                  "its codes are the more efficient ones")
else:
    rd_verdict = (f"VQ-VAE-2 spends {rate_ratio:.1f} times the VAE's bits without a lower "
                  "test MSE on this run")
glue("rd_verdict", rd_verdict)
glue("spatial_rate_text", compare.spatial_rate_sentence(
    spatial_bits, spatial["gaussian"], spatial_rd["sampled_mse"], vq_rate,
    mse["vqvae2"], how=rate_how))
share = vq_rate / code_bits["storage"]
glue("storage_text", f"{share:.0%} of their {code_bits['storage']:.0f} bits of storage" + (
    ": what the priors learnt about which codes follow which" if share < 1 else
    ", more than storage: on this run the priors predict the codes worse than a uniform "
    "guess would"))

# %% [markdown]
# The VAE at β = 1 has a KL of {glue:text}`rate_vae:.1f` bits per test image.
# {glue:text}`vq_rate_text`; that is {glue:text}`storage_text`. Told the class, the priors need
# {glue:text}`rate_vq_given_class:.0f` ({glue:text}`rate_vq_top:.0f` for the top grid,
# {glue:text}`rate_vq_bottom:.0f` for the bottom one): {glue:text}`label_saving`.
# {glue:text}`rd_verdict`. {glue:text}`rd_trade`
#
# {glue:text}`spatial_rate_text` (its top grid carries {glue:text}`rate_spatial_top:.1f` of
# those bits, its bottom grid {glue:text}`rate_spatial_bottom:.0f`; the figure marks it twice,
# decoded from μ and from a draw of its posterior). Its
# continuous twin, which pays nothing for what its positions carry, is the dotted line at a
# test MSE of {glue:text}`test_mse_continuous:.4f`.

# %% [markdown]
# ## Summary
#
# - **The networks:** {glue:text}`sizes_text`; {glue:text}`loss_text` (the table of section
#   "What each model is").
# - **Reconstruction:** {glue:text}`best_recon` rebuilt the test images best on this run.
#   {glue:text}`recon_verdict`
# - **Same backbone:** VQ-VAE-2's encoders and decoders reach a test MSE of
#   {glue:text}`test_mse_continuous:.4f` with a continuous bottleneck and
#   {glue:text}`test_mse_gaussian:.4f` with a Gaussian one
#   ({glue:text}`rate_spatial_total:.0f` bits per image), against
#   {glue:text}`test_mse_vqvae2:.4f` with codebooks.
# - **Latent units:** the mean pixel change from one unit is {glue:text}`change_ae:.3f` (AE
#   coordinate), {glue:text}`change_vae:.3f` (VAE coordinate) and
#   {glue:text}`change_vqvae2:.2g` (VQ-VAE-2 top code, {glue:text}`share_vqvae2:.0%` of it
#   inside the code's own cell).
# - **Interpolation:** Fréchet distance of the middle frames ($t = 0.5$) to real images
#   {glue:text}`middle_pixels:.1f` (pixels), {glue:text}`middle_ae:.1f` (AE),
#   {glue:text}`middle_vae:.1f` (VAE), {glue:text}`middle_vqvae2:.1f` (VQ-VAE-2); real
#   images {glue:text}`middle_floor:.1f`.
# - **Codes as features:** with {glue:text}`few` labels per class, {glue:text}`few_verdict`;
#   with {glue:text}`all_label`, {glue:text}`all_verdict`.
# - **Rate:** {glue:text}`rate_vae:.1f` bits per image for the VAE at β = 1 (its KL, an
#   upper bound on the information its code carries), {glue:text}`rate_vq:.0f` for VQ-VAE-2's
#   codes under its priors {glue:text}`rate_vq_how` (the shorter of its two codes); the AE's
#   real-valued code has none.
# - **Generation** (without a label; mean ± std of {glue:text}`n_fid_draws` draws): Fréchet
#   distances {glue:text}`fid_cnn_ae:.1f` ± {glue:text}`fid_cnn_std_ae:.1f` (AE),
#   {glue:text}`fid_cnn_vae:.1f` ± {glue:text}`fid_cnn_std_vae:.1f` (VAE) and
#   {glue:text}`fid_cnn_vqvae2:.1f` ± {glue:text}`fid_cnn_std_vqvae2:.1f` (VQ-VAE-2), floor
#   {glue:text}`fid_cnn_floor:.1f` ± {glue:text}`fid_cnn_std_floor:.1f`; VQ-VAE-2 given a
#   label {glue:text}`fid_cnn_vqvae2_label:.1f` ± {glue:text}`fid_cnn_std_vqvae2_label:.1f`.
#   KIDs {glue:text}`kid_cnn_ae:.3g` (AE), {glue:text}`kid_cnn_vae:.3g` (VAE),
#   {glue:text}`kid_cnn_vqvae2:.3g` (VQ-VAE-2), real images {glue:text}`kid_cnn_floor:.3g`.
#
# Rerun this chapter with `dataset="mnist"` (the standard profile) or on colour data
# (`dataset="cifar10"` or a `folder:`) and every sentence above is rewritten by the numbers.

# %% [markdown]
# ## What can go wrong
#
# ```{warning}
# - **Comparing codes and networks of different sizes**: a vector of a few real numbers
#   against grids of codebook indices, decoded by networks of different sizes trained on
#   different losses, is not one contest. Say what each code costs (the rates above) and what
#   each network is (the fairness table), or compare on the same backbone, as section 1
#   does, before calling one family sharper.
# - **Fréchet distances without their spread, or read as if their bias were known**: the
#   distance is biased upwards at small sample sizes, by an amount that depends on each
#   generator's covariance, and moves from draw to draw; a difference smaller than the spread
#   of the draws is not a ranking, and the real-image floor is no correction to subtract. Set
#   an unbiased distance (the KID) beside it.
# - **A label that leaks**: a class-conditional generator told the class competes with a
#   head start against unsupervised ones, and a classifier's features reward it for it.
# - **A judge that favours class identity**: the Fréchet distance here is computed on a digit
#   classifier's features, which see clean class evidence and little else; a generator that
#   draws prototypical digits can score well while missing the variety of handwriting
#   {cite:p}`theis2016note`.
# - **Probes tuned on the test set**: choosing a classifier's settings on the test images
#   makes every input look better than it is; the probes here choose them by
#   cross-validation on the labelled training images alone.
# ```
#
# ## Exercises
#
# ```{exercise}
# :label: ex-cmp-rate
#
# The VAE's rate is its KL in bits, VQ-VAE-2's the code length under its priors. Why is
# neither a rate for the AE, and what would you have to add to the AE to give it one?
# ```
#
# ```{solution} ex-cmp-rate
# :class: dropdown
#
# A rate needs a probability model of the codes. The VAE has one built in, the prior and the
# posterior's spread: its KL is a code length through bits-back coding, and an upper bound on
# the information the code carries, $I_q(x; z)$ plus the KL from the pooled codes to the
# prior {cite:p}`hoffman2016elbo`. VQ-VAE-2's priors give every grid a probability, hence a
# length in bits
# ({glue:text}`rate_vq:.0f` here, {glue:text}`rate_vq_how`). The AE's code is a vector of
# real numbers with no noise and no model: at float precision it can carry any number of
# bits. To give it a rate, quantise the code to a chosen precision and fit a density model
# (even the Gaussian its `sample` already fits) to the quantised codes; the code length under
# that model is a rate, which then depends on the precision you chose.
# ```
#
# ```{exercise}
# :label: ex-cmp-draws
#
# Rerun the chapter with `-p fid_draws 2` and then `-p fid_draws 10`. Which rankings of the
# Fréchet table survive both?
# ```
#
# ```{solution} ex-cmp-draws
# :class: dropdown
#
# The number of draws changes the precision of each mean, not the distance itself: a ranking
# whose gap is several standard deviations of the draws survives both runs, one within a
# spread may flip. This run used {glue:text}`n_fid_draws` draws of
# {glue:text}`n_samples_used` samples: {glue:text}`fid_verdict`.
# ```
#
# ```{exercise}
# :label: ex-cmp-labels
#
# With {glue:text}`few` labels per class, which code wins the label-efficiency table on this
# run, and by more or less than the spread of its draws? Predict before you look.
# ```
#
# ```{solution} ex-cmp-labels
# :class: dropdown
#
# Read it from the table of section 4; on this run: {glue:text}`few_verdict`.
# {glue:text}`spread_text`.
# ```
#
# ```{exercise}
# :label: ex-cmp-backbone
#
# Set VQ-VAE-2's same-backbone continuous model beside the {glue:text}`code_numbers`-number
# AE: what does the gap
# between them say about where VQ-VAE-2's sharper reconstructions come from?
# ```
#
# ```{solution} ex-cmp-backbone
# :class: dropdown
#
# The continuous model has VQ-VAE-2's encoders, decoders and grids but no quantiser, so the
# gap between it and the AE is what the spatial layout and the larger code buy, and the gap
# between it and VQ-VAE-2 is what quantisation costs. On this run:
# {glue:text}`gap_sentence`.
# ```
#
# ```{exercise}
# :label: ex-cmp-judge
#
# Section 5's floor row scores as many *real* training images as there are samples against
# the test set. Predict before you look: why is it not zero, and what does it say about
# differences between models smaller than it?
# ```
#
# ```{solution} ex-cmp-judge
# :class: dropdown
#
# Two finite samples of the same distribution have different means and covariances, and the
# squared distance between the estimates is positive on average: the Fréchet distance is
# biased upwards, the more so the fewer samples and the more features. The floor row shows
# that bias for real images at this sample size, but a generator's own bias differs: it
# depends on the covariance of its features {cite:p}`chong2020effectively`, so the floor is
# no amount to subtract from the other rows, and a gap between two models within the spread
# of the draws is not evidence that one generates better. The KID is unbiased, its expected
# value for the floor is zero. This run's floor is {glue:text}`fid_cnn_floor:.1f` ±
# {glue:text}`fid_cnn_std_floor:.1f` in Fréchet distance and {glue:text}`kid_cnn_floor:.3g` ±
# {glue:text}`kid_cnn_std_floor:.2g` in KID.
# ```
