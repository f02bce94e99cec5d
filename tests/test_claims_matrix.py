"""The claims matrix (scripts/claims_matrix.py): its table, and a small matrix built for real."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
from latent_notes.book import claims  # noqa: E402

# the full profile's tiny budgets (tests/test_full_profile.py) on the quick profile
TINY = ["epochs=1", "subset=300", "judge_epochs=1", "02.tsne_points=100", "03.side_epochs=1",
        "03.colour_epochs=1", "03.is_samples=3", "03.eval_images=40", "03.tsne_points=100",
        "04.prior_epochs=1", "04.colour_epochs=1", "04.samples_per_class=2",
        "04.judged_per_class=2", "05.vq_epochs=1", "05.n_samples=40", "05.fid_draws=2",
        "05.label_repeats=1", "05.labels_per_class=[1, 10]", "05.interpolation_pairs=10"]


def test_the_table_marks_each_claim_in_each_cell_and_counts_those_that_hold_everywhere(tmp_path):
    report = tmp_path / "r.xml"
    report.write_text('<testsuites><testsuite><testcase name="test_a"/>'
                      '<testcase name="test_b"><failure message="x"/></testcase>'
                      '</testsuite></testsuites>')
    found = claims.read_junit(report)
    assert found == {"test_a": "passed", "test_b": "failed"}
    cells = {"seed0-threads1": found, "seed1-threads1": {"test_a": "passed", "test_b": "passed"}}
    text = claims.table(cells)
    assert "| a | ✓ | ✓ |" in text and "| b | ✗ | ✓ |" in text
    assert "1 of 2 claims hold in all 2 cells" in text
    assert claims.read_junit(tmp_path / "absent.xml") == {"(claims tests)": "error"}
    record = tmp_path / "m.json"
    record.write_text(json.dumps({"profile": "quick", "date": "2026-12-07", "machine": "m",
                                  "commit": "abc", "cells": cells}))
    shown = claims.matrix_markdown(claims.load(record))
    assert "## Where the claims hold" in shown and "| b | ✗ | ✓ |" in shown


def test_cells_of_older_commits_stay_only_when_asked_and_name_their_commit(tmp_path,
                                                                         monkeypatch):
    sys.path.insert(0, str(ROOT / "scripts"))
    import claims_matrix

    record = tmp_path / "m.json"
    record.write_text(json.dumps({"profile": "quick", "date": "2026-12-06", "machine": "m",
                                  "commit": "aaaa111", "cells": {
                                      "seed0-threads1": {"test_a": "passed"}}}))
    monkeypatch.setattr(claims_matrix, "RECORD", record)
    monkeypatch.setattr(claims_matrix, "load", lambda: claims.load(record))
    monkeypatch.setattr(claims_matrix, "run_cell",
                        lambda *args: {"test_a": "passed", "test_b": "failed"})
    monkeypatch.setattr(claims_matrix.subprocess, "run", lambda *a, **k: type(
        "Done", (), {"stdout": "bbbb222\n"})())
    claims_matrix.main(["--seeds", "1", "--threads", "2", "--record", "--work", str(tmp_path)])
    assert list(claims.load(record)["cells"]) == ["seed1-threads2"]  # the older cell dropped
    record.write_text(json.dumps({"profile": "quick", "date": "2026-12-06", "machine": "m",
                                  "commit": "aaaa111", "cells": {
                                      "seed0-threads1": {"test_a": "passed"}}}))
    claims_matrix.main(["--seeds", "1", "--threads", "2", "--record", "--keep-older",
                        "--work", str(tmp_path)])
    kept = claims.load(record)
    assert kept["commits"] == {"seed0-threads1": "aaaa111", "seed1-threads2": "bbbb222"}
    shown = claims.matrix_markdown(kept)
    assert "| seed0-threads1 (aaaa111) | seed1-threads2 (bbbb222) |" in shown
    assert "| b | · | ✗ |" in shown  # not a test at the older commit
    assert "1 of 2 claims hold in all 2 cells (" in shown  # b failed where it ran
    kept["cells"]["seed1-threads2"]["test_b"] = "passed"
    assert "1 of 2 claims hold in all 2 cells; 1 more holds in every cell whose commit" in (
        claims.table(kept["cells"], kept["commits"]))
    here = claims_matrix.machine()
    assert (f"seed0-threads1 at commit aaaa111 on a machine not recorded; seed1-threads2 at "
            f"commit bbbb222 on {here}") in shown
    one = claims.table(kept["cells"], {c: "bbbb222" for c in kept["cells"]})
    assert "| claim | seed0-threads1 | seed1-threads2 |" in one  # one commit: plain names
    # the new cell names the machine it was built on, vector extensions included; the older
    # one, recorded before machines were, says so
    assert kept["machines"] == {"seed1-threads2": here}
    assert re.fullmatch(r"\d+ CPU cores, .+, [A-Z0-9_]+", here)


def test_a_record_whose_machine_names_are_not_plain_text_reads_as_none(tmp_path):
    record = tmp_path / "m.json"
    cells = {"seed0-threads1": {"test_a": "passed"}}
    for machines in ({"seed0-threads1": "<b>evil</b>"}, {"seed9-threads1": "2 CPU cores"},
                     ["2 CPU cores"]):
        record.write_text(json.dumps({"profile": "quick", "cells": cells,
                                      "machines": machines}))
        assert claims.load(record) == {}
    record.write_text(json.dumps({"profile": "quick", "machine": "m", "date": "d",
                                  "commit": "abcd", "cells": cells,
                                  "machines": {"seed0-threads1": "2 CPU cores, x86_64, AVX2"}}))
    assert "(2 CPU cores, x86_64, AVX2, commit abcd)" in claims.matrix_markdown(
        claims.load(record))


@pytest.mark.parametrize("cells", [
    {"../etc": {"test_a": "passed"}},  # a cell name that is not seedN-threadsN
    {"seed0-threads1": {"test_a": "maybe"}},  # an outcome that is none of the four
    {"seed0-threads1": {"<script>": "passed"}},  # a claim name that is not a test's
    {"seed0-threads1": "passed"},
])
def test_a_malformed_record_reads_as_none(tmp_path, cells):
    record = tmp_path / "m.json"
    record.write_text(json.dumps({"profile": "quick", "cells": cells}))
    assert claims.load(record) == {} and claims.matrix_markdown(claims.load(record)) == ""
    record.write_text("{not json")
    assert claims.load(record) == {}


@pytest.mark.integration
def test_a_small_matrix_builds_each_cell_apart_and_reads_every_claim(tmp_path):
    command = [sys.executable, "scripts/claims_matrix.py", "--seeds", "0", "1", "--threads", "1",
               "--jobs", "2", "--work", str(tmp_path), "--out", str(tmp_path / "matrix.md")]
    for param in TINY:
        command += ["-p", param]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1500)
    text = (tmp_path / "matrix.md").read_text()
    assert "seed0-threads1" in text and "seed1-threads1" in text, done.stdout + done.stderr
    assert "(build)" not in text, (tmp_path / "seed0-threads1" / "build.log").read_text()[-3000:]
    claims = [line for line in text.splitlines() if line.startswith("| ") and "claim" not in line]
    assert len(claims) >= 20, text  # every claims test, read in both cells
    assert all(line.count("|") == 4 and "?" not in line for line in claims), text
    for seed in (0, 1):  # each cell its own build: its own results and seed
        results = tmp_path / f"seed{seed}-threads1" / "results" / "01_cnn_warmup.csv"
        assert results.exists()
