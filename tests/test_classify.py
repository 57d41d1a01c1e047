"""Classification baseline: metrics on hand-made predictions, model sizes, patch loading errors, a tiny
training run on real page crops, and resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from deepscores.annotate import score_pages  # noqa: E402
from deepscores.classes import load_catalogue  # noqa: E402
from deepscores.engrave import EngraveOptions  # noqa: E402
from deepscores.errors import DeepScoresError  # noqa: E402
from deepscores.formats.patches import PATCH_FOLDER, cut_patch  # noqa: E402
from deepscores.formats.pngio import write_png  # noqa: E402
from deepscores.ml.datasets import PatchDataset, random_shift, to_float  # noqa: E402
from deepscores.ml.evaluate_classify import evaluate_classify  # noqa: E402
from deepscores.ml.metrics import confusion_matrix, macro_accuracy, per_class_accuracy, top_confusions  # noqa: E402
from deepscores.ml.models import create_model, list_models  # noqa: E402
from deepscores.ml.models.resnet import count_conv_layers, count_parameters  # noqa: E402
from deepscores.ml.train_classify import train_classify  # noqa: E402
from tests.musicxml import note, rest, score, write  # noqa: E402

CLASSES = ("noteheadBlack", "noteheadHalf", "restQuarter")


# -- metrics ----------------------------------------------------------------------------------------
def test_macro_accuracy_is_the_mean_over_present_classes():
    # class 0: 6 of 8 right; class 1: 1 of 1; class 2: 0 of 3; class 3 never occurs (not a zero).
    y_true = [0] * 8 + [1] + [2] * 3
    y_pred = [0] * 6 + [1, 2] + [1] + [0, 0, 3]
    assert macro_accuracy(y_true, y_pred) == pytest.approx((0.75 + 1.0 + 0.0) / 3)
    accuracy, support = per_class_accuracy(y_true, y_pred, num_classes=4)
    assert support.tolist() == [8, 1, 3, 0]
    assert accuracy[:3].tolist() == [0.75, 1.0, 0.0] and np.isnan(accuracy[3])
    cm = confusion_matrix(y_true, y_pred, 4)
    assert cm[2].tolist() == [2, 0, 0, 1] and cm.sum() == 12
    assert top_confusions(cm, ["a", "b", "c", "d"], k=2) == [
        {"true": "c", "predicted": "a", "count": 2, "fraction_of_true": 0.6667},
        {"true": "a", "predicted": "b", "count": 1, "fraction_of_true": 0.125},
    ]


def test_macro_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        macro_accuracy([0, 1], [0])


# -- models -----------------------------------------------------------------------------------------
def test_paper_preset_has_25_conv_layers_and_about_8m_parameters():
    model = create_model("resnet_paper", num_classes=124)
    # Shortcuts are parameter-free, so every nn.Conv2d is a main-path layer: stem + 12 blocks × 2.
    assert count_conv_layers(model) == 25
    assert 7.5e6 <= count_parameters(model) <= 8.5e6


# The classifiers of the registry (it also holds detectors and U-Nets, tested in their own files).
@pytest.mark.parametrize("name", list_models("classify"))
def test_every_registered_classifier_maps_a_patch_batch_to_logits(name):
    model = create_model(name, num_classes=7).eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 1, 220, 120)).shape == (2, 7)


def test_unknown_model_is_a_deepscores_error():
    with pytest.raises(DeepScoresError, match="unknown model 'nope'"):
        create_model("nope", 3)


# -- data -------------------------------------------------------------------------------------------
def test_tensors_have_ink_one_and_shifts_fill_with_paper():
    patch = torch.full((220, 120), 255, dtype=torch.uint8)
    patch[100:120, 50:70] = 0
    x = to_float(patch[None])
    assert x.shape == (1, 1, 220, 120) and x.sum() == 400 and x.max() == 1.0
    shifted = random_shift(x, 3, torch.Generator().manual_seed(0))
    assert shifted.sum() == 400  # a shift of ≤ 3 px keeps the central symbol whole
    assert x.sum() == 400        # input not mutated


def _engrave_patches(root: Path, tmp_path: Path) -> None:
    """Three tiny scores in three fonts cut into patches of three classes; one score per split."""
    catalogue = load_catalogue()
    bars = {"train": [note("C", 5), note("E", 5, "half", 2), rest()],
            "val": [rest(), note("G", 4), note("B", 4, "half", 2)],
            "test": [note("D", 5, "half", 2), rest(), note("F", 4)]}
    # val shares train's font: a 144-patch run cannot be expected to generalise across fonts, and best.pt
    # is chosen on val.
    fonts = {"train": "Bravura", "val": "Bravura", "test": "Petaluma"}
    for split, bar in bars.items():
        source = write(tmp_path, score(*[("".join(bar))] * 48), f"{split}.musicxml")
        names = []
        for page in score_pages(source, EngraveOptions(font=fonts[split])):
            name = f"{page.score_id}-p{page.page_number:03d}-{fonts[split].lower()}"
            names.append(name)
            for symbol in page.symbols:
                if symbol.class_name in CLASSES and not symbol.hidden:
                    write_png(root / PATCH_FOLDER / symbol.class_name / f"{name}_{symbol.instance_id}.png",
                              cut_patch(page.image, symbol.bbox_xyxy))
        (root / "splits").mkdir(parents=True, exist_ok=True)
        (root / "splits" / f"{split}.txt").write_text("".join(f"{n}\n" for n in names))
    (root / PATCH_FOLDER / "class_names.csv").write_text(
        "id,name\n" + "".join(f"{i + 1},{n}\n" for i, n in enumerate(catalogue.names)))


@pytest.fixture(scope="module")
def patch_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("patches")
    _engrave_patches(root, tmp_path_factory.mktemp("scores"))
    return root


def test_splits_and_font_holdout_select_pages(patch_data):
    names = load_catalogue().names
    train = PatchDataset(patch_data, "train")
    assert {names[label] for _, label in train.samples} == set(CLASSES)  # index = catalogue id − 1
    assert all(path.stem.split("-")[2].startswith("bravura") for path, _ in train.samples)
    # Hold-out: train/val lose the held-out font; test is every page in it whose score is unseen.
    assert len(PatchDataset(patch_data, "train", holdout_font="Bravura")) == 0
    holdout_test = PatchDataset(patch_data, "test", holdout_font="Bravura")
    val = PatchDataset(patch_data, "val")
    assert {p for p, _ in holdout_test.samples} == {p for p, _ in train.samples + val.samples}
    assert len(PatchDataset(patch_data, None, fonts=["petaluma"])) == len(PatchDataset(patch_data, "test"))


def test_missing_patch_folder_is_a_one_line_error_naming_it(tmp_path):
    (tmp_path / "splits").mkdir()
    with pytest.raises(DeepScoresError) as info:
        PatchDataset(tmp_path, "train")
    message = str(info.value)
    assert str(tmp_path / PATCH_FOLDER / "class_names.csv") in message and "\n" not in message


def test_corrupt_patch_is_a_one_line_error_naming_it(patch_data, tmp_path):
    dataset = PatchDataset(patch_data, "train")
    bad = tmp_path / "noteheadBlack" / "x-p001-bravura_1.png"
    bad.parent.mkdir()
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    dataset.samples[0] = (bad, 0)
    with pytest.raises(DeepScoresError) as info:
        dataset[0]
    assert str(bad) in str(info.value) and "\n" not in str(info.value)


def test_stray_folder_in_classification_data_is_named(patch_data, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(patch_data, copy)
    (copy / PATCH_FOLDER / "notAClass").mkdir()
    with pytest.raises(DeepScoresError, match="notAClass: patch folder is not a class"):
        PatchDataset(copy, "train")


# -- training ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def trained_run(patch_data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("run")
    # One thread: on a shared 2-core machine two OpenMP threads wait on each other far more than they gain.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train_classify(patch_data, run, preset="small", epochs=10, batch_size=16, device="cpu", progress=False)
    finally:
        torch.set_num_threads(threads)
    return run


def test_tiny_run_learns_its_classes(trained_run, patch_data):
    history = json.loads((trained_run / "history.json").read_text())
    assert [row["epoch"] for row in history] == list(range(1, 11))
    assert history[-1]["train_accuracy"] >= 0.9
    # The last epoch: best.pt follows val, and 144 patches of one score do not generalise to another score.
    metrics = evaluate_classify(trained_run, patch_data, split="train", device="cpu", checkpoint="last")
    assert metrics["accuracy"] >= 0.9 and metrics["macro_accuracy"] >= 0.9
    assert set(metrics["per_class"]) == set(CLASSES)
    assert metrics["classes_without_training_patches"] == []
    assert metrics["macro_accuracy_trained_classes"] == metrics["macro_accuracy"]
    folder = trained_run / "eval-train"
    assert (folder / "confusion.png").stat().st_size > 0
    assert (folder / "per_class.md").read_text().startswith("| class | accuracy | support |")
    assert json.loads((folder / "metrics.json").read_text())["macro_accuracy"] == metrics["macro_accuracy"]
    config = json.loads((trained_run / "config.json").read_text())
    assert config["model"] == "resnet_small" and config["lr"] == 1e-3 and config["betas"] == [0.9, 0.999]


def test_resume_continues_from_the_checkpoint(trained_run, patch_data, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    with pytest.raises(DeepScoresError, match="a run exists here"):
        train_classify(patch_data, run, epochs=12, batch_size=16, device="cpu", progress=False)
    with pytest.raises(DeepScoresError, match="cannot resume with different batch_size"):
        train_classify(patch_data, run, epochs=12, batch_size=8, device="cpu", progress=False, resume=True)
    before = json.loads((run / "history.json").read_text())
    train_classify(patch_data, run, epochs=12, batch_size=16, device="cpu", progress=False, resume=True)
    after = json.loads((run / "history.json").read_text())
    assert after[:10] == before and [row["epoch"] for row in after[10:]] == [11, 12]
    assert torch.load(run / "checkpoint.pt", weights_only=False)["epoch"] == 12
    assert (run / "history.csv").read_text().count("\n") == 13


def test_a_spent_budget_still_trains_one_batch_and_checkpoints(patch_data, tmp_path):
    """max_minutes=0 is spent before the first batch arrives: the call still trains that one batch,
    validates and leaves an evaluable checkpoint (before, it left a run folder without one)."""
    run = tmp_path / "run"
    train_classify(patch_data, run, epochs=5, batch_size=16, device="cpu", progress=False, max_minutes=0)
    history = json.loads((run / "history.json").read_text())
    assert len(history) == 1 and history[0]["epoch"] == 1 and history[0]["complete"] is False
    assert history[0]["samples"] == 16
    assert (run / "best.pt").is_file()
    assert evaluate_classify(run, patch_data, split="train", device="cpu")["samples"] > 0
