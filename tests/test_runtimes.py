"""Run times come from builds that trained every model they used, never from a warm cache."""
import json

import pytest

from latent_notes.book import runtimes


def report(*chapters, profile="quick"):
    return {"profile": profile, "chapters": {
        name: {"status": "executed", "seconds": seconds, "peak_rss_mb": 900.0,
               "models": [{"key": k, "status": s} for k, s in events]}
        for name, seconds, events in chapters}}


COLD = report(("01_cnn_warmup", 40.2, [("a", "trained"), ("b", "trained")]),
              ("04_vqvae2", 105.0, [("a", "loaded as judge-digits"), ("c", "trained")]))


def test_a_build_that_trained_what_it_loaded_is_cold_and_one_that_found_models_is_not():
    assert runtimes.is_cold(COLD)
    warm = report(("04_vqvae2", 20.0, [("a", "loaded as judge-digits"), ("c", "trained")]))
    assert not runtimes.is_cold(warm)
    fetched = report(("01_cnn_warmup", 5.0, [("a", "downloaded")]))
    assert not runtimes.is_cold(fetched)
    assert not runtimes.is_cold(report())  # nothing executed


def test_record_keeps_each_profile_and_refuses_a_warm_build(tmp_path):
    path = tmp_path / "run_times.json"
    runtimes.record(COLD, "2 CPU cores", path, date="2026-12-02")
    runtimes.record(report(("03_vae", 2100.0, [("v", "trained")]), profile="standard"),
                    "2 CPU cores", path, date="2026-12-02")
    times = runtimes.load(path)
    assert times["quick"]["01_cnn_warmup"]["seconds"] == 40.2
    assert times["standard"]["03_vae"]["machine"] == "2 CPU cores"
    with pytest.raises(ValueError, match="did not train"):
        runtimes.record(report(("02_autoencoder", 1.0, [("z", "cached")])), "x", path)
    assert "02_autoencoder" not in runtimes.load(path)["quick"]


def test_sentences_and_table_read_the_record(tmp_path):
    path = tmp_path / "run_times.json"
    runtimes.record(COLD, "2 CPU cores", path, date="2026-12-02")
    times = runtimes.load(path)
    sentence = runtimes.cost_sentence("04_vqvae2", times)
    assert sentence.startswith("In a build that trained every model it used, this chapter "
                               "took 105 s on the quick profile, on 2 CPU cores on 2026-12-02")
    assert "recorded what this chapter costs" in runtimes.cost_sentence("05_comparison", times)
    table = runtimes.table_markdown(["01_cnn_warmup", "05_comparison"], times)
    assert "| 01_cnn_warmup | 40 s |" in table and "| 05_comparison | - |" in table
    assert runtimes.table_markdown(["01_cnn_warmup"], {}) == ""


@pytest.mark.parametrize("seconds, text", [(40.2, "40 s"), (1576, "26 min"),
                                           (6299, "1 h 45 min")])
def test_durations_read_like_a_person_would_say_them(seconds, text):
    assert runtimes.duration(seconds) == text


@pytest.mark.parametrize("content", ["not json", "[1, 2]",
                                     json.dumps({"quick": {"01": {"seconds": "soon"}}}),
                                     json.dumps({"nightly": {"01": {"seconds": 3}}})])
def test_a_malformed_record_reads_as_nothing_recorded(tmp_path, content):
    path = tmp_path / "run_times.json"
    path.write_text(content)
    with pytest.warns(UserWarning, match="run_times.json: ignored"):
        assert runtimes.load(path) in ({}, {"quick": {}})
    path.unlink()  # no record yet: nothing to warn about
    assert runtimes.load(path) == {}


@pytest.mark.parametrize("profile, chapter", [("nightly", "01_cnn_warmup"),
                                              ("quick", "../../etc/passwd")])
def test_a_report_with_a_foreign_profile_or_chapter_is_refused(tmp_path, profile, chapter):
    path = tmp_path / "run_times.json"
    hostile = report((chapter, 1.0, [("a", "trained")]), profile=profile)
    with pytest.raises(ValueError, match="profile|not a chapter"):
        runtimes.record(hostile, "x", path)
    assert not path.exists()


GOOD = {"seconds": 40.2, "peak_rss_mb": 900.0, "machine": "2 CPU cores", "date": "2026-12-02"}


@pytest.mark.parametrize("fault", [{"date": ...}, {"seconds": float("nan")},
                                   {"seconds": float("inf")}, {"seconds": True},
                                   {"machine": ...}, {"peak_rss_mb": float("nan")}])
def test_a_malformed_entry_is_ignored_with_one_warning_and_no_chapter_raises(tmp_path, fault):
    """An entry lacking its date, or with a NaN or infinite time (json reads NaN and Infinity),
    is left out with one warning; the other entries, the chapters' sentences and the intro's
    table still read."""
    entry = {k: v for k, v in {**GOOD, **fault}.items() if v is not ...}
    path = tmp_path / "run_times.json"
    path.write_text(json.dumps({"quick": {"01_cnn_warmup": GOOD, "02_autoencoder": entry}}))
    with pytest.warns(UserWarning, match="ignored quick/02_autoencoder") as caught:
        times = runtimes.load(path)
    assert len(caught) == 1
    assert times == {"quick": {"01_cnn_warmup": GOOD}}
    assert "recorded what this chapter costs" in runtimes.cost_sentence("02_autoencoder", times)
    assert "40 s on the quick profile" in runtimes.cost_sentence("01_cnn_warmup", times)
    assert "| 02_autoencoder | - |" in runtimes.table_markdown(["01_cnn_warmup",
                                                                "02_autoencoder"], times)
