"""check_dataset / format_report: counts against the expected release sizes."""

from __future__ import annotations

import json
import shutil

from multiad.data import check_dataset, expected_counts, format_report
from multiad.data.check import main as check_main
from multiad.data.expected import MVTEC_COUNTS
from multiad.data.synthetic import make_synthetic
from multiad.data.testing import make_bmad_tree, make_mvtec_tree


def test_mvtec_table_totals_match_the_release():
    train = sum(t for t, _ in MVTEC_COUNTS.values())
    test = sum(sum(d.values()) for _, d in MVTEC_COUNTS.values())
    assert (len(MVTEC_COUNTS), train, test, train + test) == (15, 3629, 1725, 5354)
    exp = expected_counts("mvtec", "toothbrush")
    assert str(exp["train"]["normal"]) == "60"
    assert str(exp["test"]["anomalous"]) == "30"


def test_mvtec_fixture_reports_differences(tmp_path):
    make_mvtec_tree(tmp_path, "bottle", n_train=3, n_good=2,
                    defects={"broken_large": 1, "dent": 1})
    report = check_dataset("mvtec", tmp_path, "bottle")
    assert not report.ok and not report.problems
    diffs = {(d.split, d.what): (d.found, d.expected) for d in report.differences}
    assert diffs[("train", "normal")] == (3, "209")
    assert diffs[("test", "normal")] == (2, "20")
    assert diffs[("test", "defect:broken_small")] == (0, "22")
    assert diffs[("test", "defect:dent")] == (1, "0")  # not a bottle defect type
    text = format_report(report)
    assert "209" in text and "DIFF" in text and "defect:dent" in text and "NOT OK" in text


def test_bmad_fixture_against_expected_counts(tmp_path):
    root = make_bmad_tree(tmp_path, "D", "liver")
    report = check_dataset("liver", root)
    assert report.layout == "D" and not report.ok
    diff = {(d.split, d.what): d for d in report.differences}
    assert diff[("train", "normal")].expected == "1,452-1,542"
    assert diff[("test", "anomalous")].found == 3
    assert any("domain shift" in n for n in report.notes)
    assert "1,452-1,542" in format_report(report)


def test_synthetic_checks_ok_against_its_manifest(tmp_path):
    make_synthetic("medical", tmp_path, size=32, n_train=2, n_test_good=1, n_test_per_defect=1)
    report = check_dataset("synthetic", tmp_path, "medical", check_image_sizes=True)
    assert report.ok, format_report(report)
    assert format_report(report).endswith("Result: OK")
    shutil.rmtree(tmp_path / "medical" / "test" / "mass")
    shutil.rmtree(tmp_path / "medical" / "ground_truth" / "mass")
    report = check_dataset("synthetic", tmp_path, "medical")
    assert [(d.what, d.found) for d in report.differences] == [("anomalous", 1),
                                                               ("defect:mass", 0)]


def test_check_never_generates_synthetic_data(tmp_path):
    report = check_dataset("synthetic", tmp_path, "texture")
    assert not report.ok and "No synthetic 'texture' set" in report.problems[0]
    assert list(tmp_path.iterdir()) == []


def test_broken_dataset_becomes_a_problem_not_an_exception(tmp_path):
    folder = make_mvtec_tree(tmp_path, "wood")
    (folder / "ground_truth" / "crack" / "000_mask.png").unlink()
    report = check_dataset("mvtec", tmp_path, "wood")
    assert not report.ok and "Image without mask" in report.problems[0]
    assert "Problems:" in format_report(report)


def test_user_folder_without_expectations(tmp_path):
    make_mvtec_tree(tmp_path, "mine")
    report = check_dataset("folder", tmp_path / "mine")
    assert report.ok and report.expected == {}
    assert "no expected counts" in format_report(report)


def test_command_line_exit_codes_and_json(tmp_path, capsys):
    make_mvtec_tree(tmp_path, "bottle")
    out = tmp_path / "report.json"
    code = check_main(["--kind", "mvtec", "--root", str(tmp_path), "--category", "bottle",
                       "--check-image-sizes", "--json", str(out)])
    assert code == 1 and "Result: NOT OK" in capsys.readouterr().out
    saved = json.loads(out.read_text())
    assert saved["ok"] is False and saved["counts"]["train"]["normal"] == 3
    make_mvtec_tree(tmp_path / "f", "mine")
    assert check_main(["--kind", "folder", "--root", str(tmp_path / "f" / "mine")]) == 0
    assert check_main(["--kind", "nope", "--root", str(tmp_path)]) == 2
