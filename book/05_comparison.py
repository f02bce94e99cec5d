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
# 1's classifier. At the end, the results of every chapter are gathered into one table.

# %% tags=["remove-cell"]
# Colab, or any Python where the package is missing: install it from the repository.
try:
    import latent_notes  # noqa: F401
except ImportError:
    import subprocess
    import sys

    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "git+https://github.com/latent-notes/latent-notes"])

# %%
import pandas as pd
import torch

from latent_notes import classifier, compare, latent, plots
from latent_notes.metrics import classifier_features, gaussian_stats
from latent_notes.notebook import glue, start_chapter
from latent_notes.results import Results, gather
from latent_notes.vqvae2 import edit_code

# %% tags=["parameters"]
dataset = "digits"  # digits | mnist | fashion-mnist | cifar10 | folder:PATH
data_root = None  # folder holding the data sets (None: $LATENT_NOTES_DATA, else ./data)
epochs = 10  # passes over the training images, for any model the cache does not hold yet
subset = None  # cap on the number of training images (None: all of them)
seed = 0  # same seed, same numbers (on the CPU)
device = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
results_dir = "results"  # this chapter writes <results_dir>/05_comparison.csv
cache_dir = None  # trained checkpoints (None: $LATENT_NOTES_CACHE, else ~/.cache/latent-notes)
latent_size = 16  # code size of the AE and the VAE compared (chapters 2 and 3 train it)
n_samples = 300  # generated images per model for the sample scores
temperature = 1.0  # sampling temperature of VQ-VAE-2's priors
probe_train = 2000  # training codes for the probes (None: all)
knn_neighbours = 5  # k of the k-nearest-neighbours probe
interpolation_from = "2"  # class (name or index) of the first image of the interpolation
interpolation_to = "7"  # class of the last image

# %%
chapter = start_chapter("05_comparison", dataset=dataset, data_root=data_root, epochs=epochs,
                        subset=subset, seed=seed, device=device, results_dir=results_dir,
                        cache_dir=cache_dir)
data, dev = chapter.data, chapter.device
results = Results("05_comparison", data.name, results_dir, label="comparison")
test_x, test_y = data.test.images, data.test.labels
print(data, "on", dev)

# %% [markdown]
# ## The three models
#
# The models are the ones chapters 2, 3 and 4 trained on this data set: the autoencoder and the
# β = 1 VAE with a code of `latent_size` numbers, and the VQ-VAE-2 with its two PixelCNN priors.
# They are found in the checkpoint cache under stable names; a model that is missing (because
# its chapter has not run on this data) is trained here with its family's default settings.
# The judge is chapter 1's best classifier.

# %%
models, origin = compare.load_models(data, latent_size=latent_size, epochs=epochs, seed=seed,
                                     device=dev, cache_dir=chapter.cache_dir,
                                     temperature=temperature)
judge = classifier.load_judge(data, dev, chapter.cache_dir).model
origin

# %% [markdown]
# ## 1. Reconstruction
#
# Every test image goes through each model's latent and back. We report the mean squared error
# per pixel and the peak signal-to-noise ratio $\mathrm{PSNR} = 10 \log_{10}(1/\mathrm{MSE})$
# in decibels (pixels in $[0, 1]$; higher is better), over the **whole** test set. The VAE
# reconstructs from its posterior mean μ, without sampling.

# %% tags=["nbval-check-output"]
rows = []
for name, model in models.items():
    scores = compare.reconstruction_scores(model, test_x)
    for metric, value in scores.items():
        results.add(name, metric, value)
        glue(f"{metric}_{name}", value)
    rows.append({"model": name, **scores})
recon_table = pd.DataFrame(rows).set_index("model")
best_recon = recon_table["test_mse"].idxmin()
glue("best_recon", best_recon)
recon_table.round(5)

# %%
shown = torch.tensor([int((test_y == k).nonzero()[0]) for k in range(len(data.classes))])
grid = torch.cat([test_x[shown]] + [m.reconstruct(test_x[shown]) for m in models.values()])
plots.image_grid(grid, len(shown), row_labels=["input", *models],
                 col_labels=[data.classes[k] for k in test_y[shown]],
                 title="One test image per class (top) and its three reconstructions");

# %% [markdown]
# The lowest reconstruction error on this run belongs to **{glue:text}`best_recon`**
# (AE {glue:text}`test_mse_ae:.4f`, VAE {glue:text}`test_mse_vae:.4f`, VQ-VAE-2
# {glue:text}`test_mse_vqvae2:.4f`; PSNR {glue:text}`psnr_ae:.1f`,
# {glue:text}`psnr_vae:.1f` and {glue:text}`psnr_vqvae2:.1f` dB). The usual expectation is
# that the discrete grid of VQ-VAE-2 keeps the most detail, because it stores a code for every
# region of the image, while the VAE blurs most, because its KL term pays for every bit of
# information in its code. {glue:text}`recon_verdict`

# %%
order = list(recon_table["test_mse"].sort_values().index)
expected = ["vqvae2", "ae", "vae"]
glue("recon_verdict", "This run agrees." if order == expected else
     f"This run orders them differently ({' < '.join(order)} in MSE), so here the usual "
     "expectation does not hold; short training (the quick profile) is the first suspect.");

# %% [markdown]
# ## 2. What does one latent unit control?
#
# We take one test image and change a single unit of its latent: one coordinate of the AE's
# or the VAE's code (by −2 to +2 standard deviations of that coordinate over the test set), or
# one code index of VQ-VAE-2's top grid (replaced by the most used codes).

# %%
x0 = test_x[shown[0]]
steps = torch.linspace(-2, 2, 7)
panels = {}
for name in ("ae", "vae"):
    model = models[name]
    spread = model.codes(test_x).std(0)  # (D,) how far each coordinate varies over the test set
    z0 = model.codes(x0[None])[0]
    panels[name] = torch.cat([latent.traverse(model.decode, z0, steps * spread[d], dims=[d],
                                              device=dev)[0] for d in range(4)])
vq = models["vqvae2"].net
with torch.no_grad():
    enc = vq.encode(x0[None].to(dev))
centre = (enc.codes_top.shape[1] // 2, enc.codes_top.shape[2] // 2)
panels["vqvae2"] = edit_code(vq, enc.codes_top[0], enc.codes_bottom[0], "top", centre,
                             compare.most_used_codes(vq, test_x, dev, 7))
for name, images in panels.items():
    what = ("the top code at the centre replaced by each of the 7 most used codes"
            if name == "vqvae2" else "coordinates 1-4 (rows) moved by −2σ … +2σ (columns)")
    plots.image_grid(images, 7, title=f"{name}: one latent unit changed: {what}", size=0.9)

# %% [markdown]
# A coordinate of the AE moves the whole image in ways that need not be meaningful, and often
# several features at once; the VAE's coordinates, pushed towards independence by the KL term,
# tend to change one smooth property (slant, width, thickness). A single top code of VQ-VAE-2
# changes only its own region of the image: the latent is a map, not a list of global factors.
#
# ## 3. Interpolation
#
# The straight line between two test images in each latent space, decoded, beside the same
# blend in pixel space. To put a number on "plausible", chapter 1's classifier looks at the
# seven frames strictly between the ends; the mean of its top-class probability says how much
# the in-between images look like *some* digit.

# %%
a = test_x[int((test_y == latent.class_index(data.classes, interpolation_from)).nonzero()[0])]
b = test_x[int((test_y == latent.class_index(data.classes, interpolation_to)).nonzero()[0])]
paths = {"pixels": latent.pixel_blend(a, b, 9)}
paths.update({name: model.interpolate(a, b, 9) for name, model in models.items()})
plots.image_grid(torch.cat(list(paths.values())), 9, row_labels=list(paths),
                 title=f"From a {interpolation_from} to a {interpolation_to}: "
                       "straight lines in four spaces");
plausibility = {name: float(classifier.predict(judge, frames[1:-1], dev).max(1).mean())
                for name, frames in paths.items()}
for name, value in plausibility.items():
    glue(f"plausible_{name}", value)
pd.Series(plausibility, name="mean judge confidence, inner frames").round(3)

# %% [markdown]
# The judge's mean confidence on the inner frames is {glue:text}`plausible_pixels:.2f` for the
# pixel blend, {glue:text}`plausible_ae:.2f` for the AE, {glue:text}`plausible_vae:.2f` for the
# VAE and {glue:text}`plausible_vqvae2:.2f` for VQ-VAE-2. A pixel blend is two faint digits on
# top of each other; a latent path that stays where the training images live passes through
# images that look like digits themselves.
#
# ## 4. Classifying the codes
#
# How much of the class does a code carry, in a form a simple classifier can read? We fit
# logistic regression (a *linear probe*) and $k$-nearest-neighbours on the codes of training
# images and test them on the codes of test images, beside the same classifiers on the raw
# pixels. VQ-VAE-2's code is both quantised maps, flattened. Every model and the pixels get
# the same training images, the same standardisation and the same classifiers.

# %% tags=["nbval-check-output"]
train_x, train_y = data.train.images, data.train.labels
codes = {"pixels": (train_x.flatten(1), test_x.flatten(1))}
codes.update({name: (m.codes(train_x), m.codes(test_x)) for name, m in models.items()})
rows = []
for name, (train_codes, test_codes) in codes.items():
    probe = latent.linear_probe(train_codes, train_y, test_codes, test_y, max_train=probe_train,
                                seed=seed)
    knn = compare.knn_probe(train_codes, train_y, test_codes, test_y, k=knn_neighbours,
                            max_train=probe_train, seed=seed)
    results.add(name, "probe_accuracy", probe)
    results.add(name, "knn_accuracy", knn)
    glue(f"probe_{name}", probe)
    glue(f"knn_{name}", knn)
    rows.append({"codes of": name, "dimensions": train_codes[0].numel(),
                 "linear probe": probe, "k-NN": knn})
probe_table = pd.DataFrame(rows).set_index("codes of")
glue("latent_size", latent_size)
for name in models:
    glue(f"probe_{name}_vs_pixels", compare.versus(probe_table.loc[name, "linear probe"],
                                                   probe_table.loc["pixels", "linear probe"]))
    glue(f"knn_{name}_vs_pixels", compare.versus(probe_table.loc[name, "k-NN"],
                                                 probe_table.loc["pixels", "k-NN"]))
probe_table.round(4)

# %% [markdown]
# Linear probe accuracy: AE {glue:text}`probe_ae:.1%`, VAE {glue:text}`probe_vae:.1%`,
# VQ-VAE-2 {glue:text}`probe_vqvae2:.1%`, raw pixels {glue:text}`probe_pixels:.1%`;
# $k$-NN: {glue:text}`knn_ae:.1%`, {glue:text}`knn_vae:.1%`, {glue:text}`knn_vqvae2:.1%` and
# {glue:text}`knn_pixels:.1%`. None of the three models was trained to separate classes: the
# label never entered their loss. What a probe finds is what the compression kept for free.
#
# A linear classifier reads the class from the AE's {glue:text}`latent_size`-number code
# {glue:text}`probe_ae_vs_pixels` from the pixels, and from the VAE's
# {glue:text}`probe_vae_vs_pixels` from the pixels. $k$-NN, which only asks which training
# codes lie nearest, reads the AE's code {glue:text}`knn_ae_vs_pixels` the pixels and
# VQ-VAE-2's much larger code {glue:text}`knn_vqvae2_vs_pixels` the pixels. Why is a small
# code not read far better than the pixels by a linear probe? As chapter 2 found, a
# reconstruction loss is indifferent to whether the classes fall on either side of a
# hyperplane in code space: a code that rebuilds a "4" and a "9" well may place them side by
# side along a curved sheet, which a non-linear decoder reads easily and a linear probe does
# not. Methods whose linear probes
# reach the high nineties on MNIST train for separability (labels, or contrastive objectives)
# or probe much wider features. The probe protocol here is the same for every model: the same
# training images, standardised codes, the same logistic regression.
#
# ## 5. Generation
#
# Each model makes `n_samples` new images from its own idea of the code distribution:
#
# - **AE**: codes drawn from $\mathcal{N}(0, I)$ and from a Gaussian fitted to the training
#   codes (an AE has no prior; the fitted Gaussian is its best chance);
# - **VAE**: codes drawn from its prior $\mathcal{N}(0, I)$;
# - **VQ-VAE-2**: top codes from the top PixelCNN, bottom codes from the bottom PixelCNN given
#   the top, both given a class label drawn uniformly.
#
# Chapter 1's classifier judges them twice: the **Fréchet distance** between its penultimate
# features of the samples and of the test images (the FID of Heusel et al., 2017, with our
# classifier in place of Inception; lower is better), and its mean top-class **confidence**.
# As a floor, the same distance between the two halves of the test set.

# %%
generator = torch.Generator().manual_seed(seed)
labels = torch.randint(len(data.classes), (n_samples,), generator=generator)
samples = {"ae": models["ae"].sample(n_samples, seed=seed),
           "ae N(0,I)": latent.decode_all(models["ae"].decode, torch.randn(
               n_samples, latent_size, generator=generator), dev),
           "vae": models["vae"].sample(n_samples, seed=seed),
           "vqvae2": models["vqvae2"].sample(n_samples, seed=seed, labels=labels)}
reference = gaussian_stats(classifier_features(judge, test_x, dev))
half = len(test_x) // 2
floor = compare.sample_scores(judge, test_x[:half], gaussian_stats(
    classifier_features(judge, test_x[half:], dev)), dev)
rows = [{"samples": "test images (floor)", **floor}]
for name, images in samples.items():
    scores = compare.sample_scores(judge, images, reference, dev)
    if name in models:
        for metric, value in scores.items():
            results.add(name, metric, value)
            glue(f"{metric}_{name}", value)
    else:
        results.add("ae", "fid_cnn", scores["fid_cnn"], setting="prior=N(0,I)")
    rows.append({"samples": name, **scores})
glue("fid_floor", floor["fid_cnn"])
sample_table = pd.DataFrame(rows).set_index("samples")
sample_table.round(3)

# %%
for name, images in samples.items():
    plots.image_grid(images[:30], 10, title=f"Samples: {name}", size=0.8)

# %% [markdown]
# Fréchet distances: AE (fitted Gaussian) {glue:text}`fid_cnn_ae:.2f`, VAE
# {glue:text}`fid_cnn_vae:.2f`, VQ-VAE-2 {glue:text}`fid_cnn_vqvae2:.2f`, against a floor of
# {glue:text}`fid_floor:.2f` for real test images; mean confidence {glue:text}`sample_confidence_ae:.2f`,
# {glue:text}`sample_confidence_vae:.2f` and {glue:text}`sample_confidence_vqvae2:.2f`.
# The usual ranking is VQ-VAE-2 best, then the VAE, then the AE. {glue:text}`fid_verdict`

# %%
fid_order = [m for m in sample_table.loc[list(models), "fid_cnn"].sort_values().index]
glue("fid_verdict", "This run agrees." if fid_order == ["vqvae2", "vae", "ae"] else
     f"This run ranks them {' < '.join(fid_order)} (lower is better), against the usual "
     "expectation. On the quick profile the PixelCNN priors are tiny and trained for a few "
     "epochs, and they are what VQ-VAE-2's samples depend on.");

# %% [markdown]
# ## 6. The book's results table
#
# Every chapter wrote the numbers it measured to a tidy table, one row per number. Here they
# are gathered into one, the file below is offered for download, and the comparison's numbers
# are drawn side by side.

# %%
chapters = ["01_cnn_warmup", "02_autoencoder", "03_vae", "04_vqvae2", "05_comparison"]
everything = gather(results_dir, chapters, strict=False)
everything.to_csv("all_results.csv", index=False)  # next to the page, for the download link
everything.to_csv(f"{results_dir}/all_results.csv", index=False)
glue("n_results", len(everything))
everything[everything.dataset == data.name].pivot_table(
    index=["chapter", "model", "setting"], columns="metric", values="value").round(4).fillna("")

# %% [markdown]
# The whole table ({glue:text}`n_results` numbers, every data set this results folder has
# seen): {download}`all_results.csv`.

# %%
compare.summary_figure(results.frame, title=f"AE, VAE and VQ-VAE-2 on {data.name}");

# %% [markdown]
# ## Summary
#
# - **Reconstruction:** {glue:text}`best_recon` rebuilt the test images best on this run
#   ({glue:text}`recon_verdict`).
# - **Latent units:** the AE's and VAE's coordinates act on the whole image; a VQ-VAE-2 code
#   acts on its own region.
# - **Codes as features:** a linear probe reads the class from the AE's code with
#   {glue:text}`probe_ae:.1%` accuracy, from the VAE's with {glue:text}`probe_vae:.1%` and from
#   VQ-VAE-2's with {glue:text}`probe_vqvae2:.1%`.
# - **Generation:** Fréchet distances {glue:text}`fid_cnn_ae:.2f` (AE),
#   {glue:text}`fid_cnn_vae:.2f` (VAE) and {glue:text}`fid_cnn_vqvae2:.2f` (VQ-VAE-2).
#
# Rerun this chapter with `dataset="mnist"` (the standard profile) or on colour data
# (`dataset="cifar10"` or a `folder:`) and every sentence above is rewritten by the numbers.
