"""Base data sets other than MNIST: the shipped entries (Fashion-MNIST, KMNIST), the offline and
.gz-pinned sources, class names, the family targets, and a base the project does not ship, added
through the config alone."""

import gzip
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import jsonschema
import numpy as np
import pytest
import yaml
from matplotlib.image import imread

from conftest import REPO, fetched_or_skip, make_workdir, run_snakemake
from mnist_large_scale.__main__ import main
from mnist_large_scale.fetch import _install, fetch_raw_file
from mnist_large_scale.figures import class_label, montage_figure
from mnist_large_scale.idx import read_idx
from mnist_large_scale.names import published_names
from mnist_large_scale.recipe import soft_threshold
from mnist_large_scale.sources import BaseData, FetchError, raw_file_problem, recorded_sha256_path

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist
NEEDS_FASHION = "needs raw Fashion-MNIST: Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist) or network to its mirror"
BACKGROUND, FULL_INK = float(soft_threshold(0.0, 0.02, 128.0)), float(soft_threshold(255.0, 0.02, 128.0))  # -0.76292, +0.76123
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def idx_bytes(array: np.ndarray) -> bytes:
    """An unsigned-byte IDX file of ``array``: magic 0x0000 08 <ndim>, the big-endian sizes, the data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(size).to_bytes(4, "big") for size in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


@pytest.fixture(scope="session")
def fashion_base(config) -> BaseData:
    return BaseData.from_config("fashion_mnist", config["base_data"]["fashion_mnist"])


@pytest.fixture(scope="session")
def fashion_dir(fashion_base) -> Path:
    """A folder with the four verified raw Fashion-MNIST files, fetched through the configured
    sources (Debian's folder first, then the mirror) into a cache under .pytest_cache."""
    return fetched_or_skip(fashion_base, Path(os.environ.get("MNIST_TEST_CACHE", REPO / ".pytest_cache" / "mnist")).with_name("fashion_mnist"), NEEDS_FASHION)


def test_the_shipped_bases_and_their_pins(config):
    bases = {key: BaseData.from_config(key, entry) for key, entry in config["base_data"].items()}
    assert {key: base.prefix for key, base in bases.items()} == {
        "mnist": "mnist_large_scale",
        "fashion_mnist": "fashion_mnist_large_scale",
        "kmnist": "kmnist_large_scale",
    }
    for base in bases.values():
        assert len(base.classes) == 10 and base.citation and base.license
        # IDX sizes: a 16-byte header and 28 x 28 bytes an image, an 8-byte header and a byte a label
        sizes = {raw.name: raw.size for raw in base.files.values()}
        assert sizes == {"train-images-idx3-ubyte": 16 + 60000 * 784, "t10k-images-idx3-ubyte": 16 + 10000 * 784, "train-labels-idx1-ubyte": 8 + 60000, "t10k-labels-idx1-ubyte": 8 + 10000}
        assert base.available() == {"train": 50000, "val": 10000, "test": 10000}
        assert all(raw.gz_md5 for raw in base.files.values())
    assert bases["fashion_mnist"].installed_dirs == (str(FASHION_DIR),) and list(bases["fashion_mnist"].classes) == FASHION_CLASSES
    # KMNIST is pinned by its .gz: no copy of it could be hashed where this was written
    assert all(raw.sha256 is None and raw.gz_sha256 for raw in bases["kmnist"].files.values())
    assert all(raw.sha256 and raw.gz_sha256 is None for base in ("mnist", "fashion_mnist") for raw in bases[base].files.values())


def test_a_raw_file_needs_a_sha256_or_a_gz_sha256(config):
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    entry = json.loads(json.dumps(config))
    del entry["base_data"]["kmnist"]["files"]["test_labels"]["gz_sha256"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(entry, schema)
    with pytest.raises(ValueError, match="neither sha256 nor gz_sha256"):
        BaseData.from_config("kmnist", entry["base_data"]["kmnist"])


def test_published_names_with_another_prefix(config):
    assert published_names() == config["targets"]
    names = published_names("fashion_mnist_large_scale")
    assert len(names) == 21 and all(name.startswith("fashion_mnist_large_scale_") for name in names)
    assert "fashion_mnist_large_scale_te10000_outsize112-112_scte2p828.h5" in names


def test_each_base_has_a_family_target_of_its_21_published_names(tmp_path):
    work = make_workdir(tmp_path, None)  # a fresh copy: the checkout's results/ may hold built files
    dry = run_snakemake(work, "-n", "family_fashion_mnist", "--summary")
    assert dry.returncode == 0, dry.stderr[-3000:]
    built = {line.split("\t")[0].removeprefix("results/") for line in dry.stdout.splitlines() if line.startswith("results/") and line.split("\t")[0].endswith(".h5")}
    assert built == set(published_names("fashion_mnist_large_scale"))
    reports = {line.split("\t")[0] for line in dry.stdout.splitlines() if line.startswith("results/validation/")}
    assert len(reports) == 21


# --- sources: installed folders and files pinned by their .gz -----------------------------------------


def toy_labels_file(tmp_path) -> tuple[bytes, bytes]:
    """A small IDX labels file and a .gz of it."""
    data = idx_bytes(np.arange(50, dtype=np.uint8) % 10)
    return data, gzip.compress(data, mtime=0)


def gz_pinned(data: bytes, gz: bytes, **sources) -> BaseData:
    files = {"labels": {"name": "labels-idx1-ubyte", "size": len(data), "gz_sha256": hashlib.sha256(gz).hexdigest()}}
    splits = {split: {"images": "labels-idx1-ubyte", "labels": "labels-idx1-ubyte", "start": 0, "stop": 10} for split in ("train", "val", "test")}
    return BaseData.from_config("toy", {"prefix": "toy", "files": files, "splits": splits, **sources})


def test_a_missing_installed_folder_is_skipped_and_the_next_one_used(tmp_path):
    data, gz = toy_labels_file(tmp_path)
    present = tmp_path / "present"
    present.mkdir()
    (present / "labels-idx1-ubyte.gz").write_bytes(gz)
    base = gz_pinned(data, gz, installed_dirs=[str(tmp_path / "absent"), str(present)])
    dest = tmp_path / "res" / "labels-idx1-ubyte"
    assert fetch_raw_file(base, "labels-idx1-ubyte", dest) == str(present / "labels-idx1-ubyte.gz")
    assert dest.read_bytes() == data


def test_a_file_pinned_by_its_gz_records_its_sha256_and_is_checked_by_it(tmp_path):
    data, gz = toy_labels_file(tmp_path)
    local = tmp_path / "local"
    local.mkdir()
    (local / "labels-idx1-ubyte.gz").write_bytes(gz)
    base = gz_pinned(data, gz, local_dir=str(local))
    raw = base.file_by_name("labels-idx1-ubyte")
    assert raw.pin == f"gz-sha256:{hashlib.sha256(gz).hexdigest()}"
    dest = tmp_path / "res" / "labels-idx1-ubyte"
    fetch_raw_file(base, raw.name, dest)
    assert recorded_sha256_path(dest).read_text() == f"{hashlib.sha256(data).hexdigest()}  labels-idx1-ubyte  {raw.pin}\n"
    assert raw_file_problem(raw, dest) is None
    assert fetch_raw_file(base, raw.name, dest).endswith("(already verified)")
    # a damaged copy is named, as one with a pinned sha256 is
    dest.write_bytes(data[:-1] + b"\x07")  # the last label was 9
    assert "expected " + hashlib.sha256(data).hexdigest() in raw_file_problem(raw, dest)
    # a record made under another pin does not vouch for the file: it is fetched again
    other_pin = gz_pinned(data, gzip.compress(data, mtime=7), local_dir=str(local)).file_by_name(raw.name)
    dest.write_bytes(data)
    assert raw_file_problem(raw, dest) is None and "no sha256 was recorded for that pin" in raw_file_problem(other_pin, dest)
    # without the record the file cannot be trusted: it is fetched again
    recorded_sha256_path(dest).unlink()
    assert "no sha256 was recorded" in raw_file_problem(raw, dest)
    fetch_raw_file(base, raw.name, dest)
    assert dest.read_bytes() == data and raw_file_problem(raw, dest) is None


def test_a_file_pinned_by_its_gz_refuses_a_plain_copy_and_another_gz(tmp_path):
    data, gz = toy_labels_file(tmp_path)
    plain, other = tmp_path / "plain", tmp_path / "other"
    plain.mkdir()
    other.mkdir()
    (plain / "labels-idx1-ubyte").write_bytes(data)
    (other / "labels-idx1-ubyte.gz").write_bytes(gzip.compress(data, mtime=1))  # the same bytes, another .gz
    dest = tmp_path / "res" / "labels-idx1-ubyte"
    with pytest.raises(FetchError) as caught:
        fetch_raw_file(gz_pinned(data, gz, local_dir=str(plain), installed_dirs=[str(other)]), "labels-idx1-ubyte", dest)
    message = str(caught.value)
    assert "no labels-idx1-ubyte.gz" in message and "the .gz has sha256" in message and "a .gz of sha256" in message
    assert not dest.exists() and not recorded_sha256_path(dest).exists()
    with pytest.raises(ValueError, match="a plain copy cannot be checked"):
        _install(data, gz_pinned(data, gz).file_by_name("labels-idx1-ubyte"), dest, "test")


# --- class names -------------------------------------------------------------------------------------------


def test_labels_are_drawn_with_their_class_names():
    assert class_label(3) == "3" and class_label(3, [str(k) for k in range(10)]) == "3"
    assert class_label(9, FASHION_CLASSES) == "9 Ankle boot" and class_label(12, FASHION_CLASSES) == "12"
    figure = montage_figure(np.zeros((2, 28, 28)), [0, 9], "t", classes=FASHION_CLASSES)
    assert [text.get_text() for text in figure.axes[0].texts] == ["0 T-shirt/top", "9 Ankle boot"]


# --- Fashion-MNIST from the offline source, end to end ---------------------------------------------------

FASHION_SMALL = [
    "fashion_mnist_large_scale_te200_outsize112-112_scte2p828.h5",
    "fashion_mnist_large_scale_tr100_vl50_te50_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5",
    "fashion_mnist_large_scale_te100_outsize112-112_scte0p500.h5",
]


@pytest.mark.slow
def test_fashion_mnist_files_build_from_the_offline_source_and_validate(tmp_path, fashion_dir):
    # the workflow's own fetch, from Debian's folder where it is installed (else the mirror)
    work = make_workdir(tmp_path, None, {"targets": FASHION_SMALL})
    run = run_snakemake(work, "--cores", "2", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    if FASHION_DIR.is_dir():
        for log in (work / "logs" / "fetch" / "fashion_mnist").iterdir():
            assert f"accepted from {FASHION_DIR}/" in log.read_text(), log
    labels = {split: read_idx(fashion_dir / f"{stem}-labels-idx1-ubyte") for split, stem in (("train", "train"), ("test", "t10k"))}
    for name in FASHION_SMALL:
        report = json.loads((work / "results" / "validation" / name.replace(".h5", ".json")).read_text())
        assert report["ok"], [check for check in report["checks"] if not check["ok"]]
        assert any(check["check"] == "test: labels equal the base data's, in order" and check["ok"] for check in report["checks"])
        with h5py.File(work / "results" / name, "r") as h5:
            n = h5["y_test"].shape[0]
            assert np.array_equal(h5["y_test"][()], labels["test"][:n])  # the raw labels, in order
            if h5["x_train"].ndim == 4:
                assert np.array_equal(h5["y_train"][()], labels["train"][: h5["y_train"].shape[0]])
                assert np.array_equal(h5["y_val"][()], labels["train"][50000 : 50000 + h5["y_val"].shape[0]])
            x = h5["x_test"][()]
            assert x.min() >= BACKGROUND - 1e-12 and x.max() <= FULL_INK + 1e-12 and np.isfinite(x).all()
            assert x.min() == pytest.approx(BACKGROUND, abs=1e-12)  # the frame around a garment is background
            assert h5.attrs["base_data"] == "fashion_mnist"
            assert "Fashion-MNIST" in h5.attrs["citation"] and "Zalando SE" in h5.attrs["license"] and "MIT" in h5.attrs["license"]
    # the figures: the ladder's rows carry the class names, so its left margin is wider than MNIST's 28 px
    ladder = imread(work / "results" / "figures" / "scale_ladder.png")
    assert ladder.shape[:2] == (64 + 10 * 114 + 2, 7 * len("0 T-shirt/top") + 10 + 17 * 114 + 2)
    # inspect names the classes from the config
    shown = subprocess.run([sys.executable, "-m", "mnist_large_scale", "inspect", f"results/{FASHION_SMALL[0]}"], cwd=work, capture_output=True, text=True)
    assert shown.returncode == 0, shown.stderr
    assert "classes     0 T-shirt/top, 1 Trouser," in shown.stdout and "9 Ankle boot" in shown.stdout


# --- a base the project does not ship, through the config alone -----------------------------------------------


def toy_base(folder: Path) -> dict:
    """A small MNIST-format data set (soft blobs off-centre, three classes) and its config entry;
    its test labels are pinned by their .gz alone, as KMNIST's files are."""
    rng = np.random.default_rng(5)
    rows, cols = np.mgrid[0:28, 0:28]

    def images(n):
        centres = rng.uniform(9, 18, (n, 2))
        widths = rng.uniform(2.0, 4.0, (n, 2))
        blobs = np.exp(-(((rows - centres[:, 0, None, None]) / widths[:, 0, None, None]) ** 2 + ((cols - centres[:, 1, None, None]) / widths[:, 1, None, None]) ** 2))
        return np.round(255 * blobs).astype(np.uint8)

    contents = {
        "toy-train-images": images(60),
        "toy-train-labels": (np.arange(60) % 3).astype(np.uint8),
        "toy-test-images": images(20),
        "toy-test-labels": (np.arange(20) % 3).astype(np.uint8),
    }
    folder.mkdir()
    files = {}
    for name, array in contents.items():
        data = idx_bytes(array)
        files[name.replace("-", "_")] = {"name": name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        if name == "toy-test-labels":
            gz = gzip.compress(data, mtime=0)
            (folder / f"{name}.gz").write_bytes(gz)
            files["toy_test_labels"] = {"name": name, "size": len(data), "gz_sha256": hashlib.sha256(gz).hexdigest()}
        else:
            (folder / name).write_bytes(data)
    return {
        "prefix": "toy_large_scale",
        "local_dir": str(folder),
        "files": files,
        "splits": {
            "train": {"images": "toy-train-images", "labels": "toy-train-labels", "start": 0, "stop": 50},
            "val": {"images": "toy-train-images", "labels": "toy-train-labels", "start": 50, "stop": 60},
            "test": {"images": "toy-test-images", "labels": "toy-test-labels", "start": 0, "stop": 20},
        },
        "citation": "A toy data set made by the test.",
        "license": "Toy: no rights reserved.",
        "classes": ["alpha", "beta", "gamma"],
    }


@pytest.mark.slow
def test_a_base_the_project_does_not_ship_builds_through_the_config_alone(tmp_path):
    entry = toy_base(tmp_path / "toy")
    targets = ["toy_large_scale_tr50_vl10_te20_outsize112-112_sctr2p000_scte2p000.h5", "toy_large_scale_te20_outsize112-112_scte1p000-4p000.h5"]
    work = make_workdir(tmp_path, None, {"targets": targets, "base_data": {"toy": entry}})
    run = run_snakemake(work, "--cores", "2", "all")
    assert run.returncode == 0, run.stderr[-3000:]
    assert sorted(line.split("  ")[1] for line in (work / "results" / "SHA256SUMS").read_text().splitlines()) == sorted(targets)
    for name in targets:
        report = json.loads((work / "results" / "validation" / name.replace(".h5", ".json")).read_text())
        assert report["ok"], [check for check in report["checks"] if not check["ok"]]
        with h5py.File(work / "results" / name, "r") as h5:
            assert np.array_equal(h5["y_test"][()], np.arange(20) % 3) and h5.attrs["base_data"] == "toy"
            assert h5.attrs["citation"].endswith("A toy data set made by the test.")
            assert json.loads(h5.attrs["source_sha256"])["toy-test-labels"] == "gz-sha256:" + entry["files"]["toy_test_labels"]["gz_sha256"]
    # the file pinned by its .gz: the sha256 of what it inflated to, recorded beside it
    labels = (work / "resources" / "toy" / "toy-test-labels").read_bytes()
    assert recorded_sha256_path(work / "resources" / "toy" / "toy-test-labels").read_text().split()[0] == hashlib.sha256(labels).hexdigest()
    # the ladder of a three-class base: three rows, named ("0 alpha" is wider than a digit)
    assert imread(work / "results" / "figures" / "scale_ladder.png").shape[:2] == (64 + 3 * 114 + 2, 7 * len("0 alpha") + 10 + 17 * 114 + 2)


def test_preview_draws_a_base_at_a_few_scales_from_its_raw_files(tmp_path, fashion_dir):
    out = tmp_path / "preview.png"
    assert main(["preview", "fashion_mnist", "--raw-dir", str(fashion_dir), "--out", str(out), "--count", "4", "--scales", "1", "2.5", "--size", "64", "--config", str(REPO / "config.yaml")]) == 0
    assert imread(out).shape[:2] == (44 + 2 * 66 + 2, 640)  # two rows of four 64-px tiles, in a title-wide frame


def test_inspect_names_the_classes_of_a_published_style_file_by_its_prefix(tmp_path, capsys):
    """A published file has no attributes: its base is the one whose prefix its name has."""
    for prefix, shown in (("fashion_mnist_large_scale", True), ("mnist_large_scale", False)):
        path = tmp_path / f"{prefix}_te3_outsize32-32_scte2p000.h5"
        with h5py.File(path, "w") as h5:
            h5["x_test"] = np.zeros((3, 32, 32, 1))
            h5["y_test"] = np.array([9, 0, 3], dtype=np.uint8)
        assert main(["inspect", str(path), "--config", str(REPO / "config.yaml")]) == 0
        out = capsys.readouterr().out
        assert ("classes     0 T-shirt/top, 1 Trouser" in out) is shown, out  # MNIST's digits name themselves
