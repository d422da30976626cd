"""The public evidence on the recipe, reproducible: ``python -m mnist_large_scale.evidence`` (``make evidence``).

Three checks, each against material published by others (docs/evidence.md):

* printed ranges: the ``Intensity range: [min, max]`` lines that two public
  notebooks print for the single ``x_train`` sample of published files, parsed
  from their outputs, against what recipe variants print for MNIST train[0], and
  how many of the first 2,000 MNIST training images would print the same;
* the authors' figures: the montages embedded in the authors' notebook, fitted
  by ``figure_fit``;
* a model trained on the published s = 1 file (``riesznet``): its correct counts
  on rebuilt test images under recipe variants, against the counts its notebook
  prints.

The inputs are third-party files: they are fetched by HTTPS into a cache folder
outside git, pinned by sha256, and never committed.
"""

from __future__ import annotations

import argparse
import base64
import dataclasses
import hashlib
import json
import re
import sys
import urllib.request
from pathlib import Path

import numpy as np

from .recipe import Recipe

#: The inputs: a name in the cache, the HTTPS address it is fetched from, its sha256.
INPUTS = {
    "authors_notebook": (
        "Load_MNISTLargeScale_dataset.ipynb",
        "https://raw.githubusercontent.com/spacemir/MNISTLargeScaleDataset/2ff4abea581be76c75b9c73bbedf7c0504d1012e/Load_MNISTLargeScale_dataset.ipynb",
        "26ef982b439e7c286b2cdffbc2fab6a54ae434999b626432b24ae1df79323cc1",
    ),
    "riesznet_notebook": (
        "RieszNet-MNISTLargescale.ipynb",
        "https://raw.githubusercontent.com/tibaris/RieszNetworks/7d636e6b703092478a5a7110be563502714f5a41/RieszNet-MNISTLargescale.ipynb",
        "2e7ff38a348a4203c2cf5d0c07ce28c11cdbca9b9421c979709e6c6d745e645d",
    ),
    "riesznet_weights": (
        "riesznet-mnist-largescale_train5k-ep20.pth",
        "https://raw.githubusercontent.com/tibaris/RieszNetworks/7d636e6b703092478a5a7110be563502714f5a41/model/riesznet-mnist-largescale_train5k-ep20.pth",
        "0771383d0d68a4e57c51666647f263d415cf6a280a272a23c5d123672f21d6ef",
    ),
}
SCALES = (0.5, 1.0, 2.0, 4.0, 8.0)
#: Recipe variants of the printed-range and model checks: name -> recipe changes from the configured one.
VARIANTS = {
    "default": {},
    "stretch": {"stretch": True},
    "stretch+reflect": {"stretch": True, "smooth_boundary": "reflect"},
    "stretch+constant": {"stretch": True, "smooth_boundary": "constant"},
    "stretch+nearest": {"stretch": True, "smooth_boundary": "nearest"},
    "reflect": {"smooth_boundary": "reflect"},
}
_RANGE = re.compile(r"Intensity range: \[(-?\d+\.\d+), (-?\d+\.\d+)\]")
_COUNT = re.compile(r"^\[(\d+), (\d+)\]\s*$", re.MULTILINE)
_FILENAME = re.compile(r"filename = '([^']+)'")
_SCALE_VALUE = re.compile(r"scale = \"([0-9p]+)\"")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fetch_inputs(cache: Path, offline: bool = False) -> dict[str, Path]:
    """The inputs in ``cache``, each verified by sha256; fetched by HTTPS when missing (not when ``offline``).

    Raises RuntimeError naming every file still needed, with its address, when one cannot be had.
    """
    cache.mkdir(parents=True, exist_ok=True)
    paths, missing = {}, []
    for key, (name, url, digest) in INPUTS.items():
        path = cache / name
        if path.is_file() and _sha256(path) != digest:
            missing.append(f"{path} has the wrong sha256 (expected {digest}): delete it; it comes from {url}")
            continue
        if not path.is_file() and not offline:
            try:
                with urllib.request.urlopen(url, timeout=60) as response:  # noqa: S310 (a pinned https address)
                    data = response.read()
            except OSError as error:
                missing.append(f"{path}: could not fetch {url} ({error})")
                continue
            if hashlib.sha256(data).hexdigest() != digest:
                missing.append(f"{url} gave a file of another sha256 than {digest}")
                continue
            partial = path.with_name(path.name + ".part")
            partial.write_bytes(data)
            partial.replace(path)
        if not path.is_file():
            missing.append(f"{path}: fetch {url} (sha256 {digest})")
            continue
        paths[key] = path
    if missing:
        raise RuntimeError("the evidence needs these files:\n  " + "\n  ".join(missing))
    return paths


def _cells(notebook_path: Path) -> list[dict]:
    return json.loads(Path(notebook_path).read_text())["cells"]


def _output_text(cell: dict) -> str:
    return "".join("".join(output.get("text", "")) for output in cell.get("outputs", []))


def _file_name(source: str) -> str | None:
    """The file a notebook cell loads (``filename = '...'``, with a ``scale = "..."`` substituted)."""
    match = _FILENAME.search(source)
    if match is None:
        return None
    name = match.group(1)
    scale = _SCALE_VALUE.search(source)
    return name.replace("{:s}", scale.group(1)) if scale else name


def notebook_facts(notebook_path: Path) -> dict:
    """What a notebook prints and shows, cell by cell, with the file each refers to.

    Returns
    -------
    dict
        ``ranges``: ``{cell, file, min, max}`` of each printed intensity range;
        ``counts``: ``{cell, file, correct, total}`` of each printed correct count;
        ``figures``: ``{cell, file, split, png}`` of each embedded PNG of an ``imshow`` loop.
    """
    facts = {"ranges": [], "counts": [], "figures": []}
    current = None
    for index, cell in enumerate(_cells(notebook_path)):
        source = "".join(cell.get("source", ""))
        current = _file_name(source) or current
        text = _output_text(cell)
        for low, high in _RANGE.findall(text):
            facts["ranges"].append({"cell": index, "file": current, "min": low, "max": high})
        for correct, total in _COUNT.findall(text):
            facts["counts"].append({"cell": index, "file": current, "correct": int(correct), "total": int(total)})
        split = re.search(r"images = x_(train|test|val)", source)
        for output in cell.get("outputs", []):
            png = output.get("data", {}).get("image/png")
            if png and split and "imshow" in source:
                facts["figures"].append({"cell": index, "file": current, "split": split.group(1), "png": base64.b64decode("".join(png))})
    return facts


def _recipe(config_recipe: dict, changes: dict) -> Recipe:
    return dataclasses.replace(Recipe.from_config(config_recipe), **changes)


def printed_range_check(train_images: np.ndarray, config_recipe: dict, variants=VARIANTS, scales=SCALES, first: int = 2000) -> dict:
    """What each variant prints (``{:.2f}`` of min and max) for train[0], and the share of the first images printing 0.76 at every scale."""
    from .engine import transform_images

    out = {}
    for name, changes in variants.items():
        recipe = _recipe(config_recipe, changes)
        printed, all_076 = {}, np.ones(first, dtype=bool)
        for scale in scales:
            values = transform_images(train_images[:first], np.full(first, scale), (112, 112), recipe)
            lows, highs = values.min(axis=(1, 2)), values.max(axis=(1, 2))
            printed[f"{scale:g}"] = f"[{lows[0]:.2f}, {highs[0]:.2f}]"
            all_076 &= np.array([f"{v:.2f}" == "0.76" for v in highs])
        out[name] = {
            "train0": printed,
            "train0_prints_published": all(text == "[-0.76, 0.76]" for text in printed.values()),
            f"share_of_first_{first}_printing_0.76_at_all_scales": float(all_076.mean()),
            "first_20_printing_0.76_at_all_scales": int(all_076[:20].sum()),
        }
    return out


def model_check(weights: Path, test_images: np.ndarray, test_labels: np.ndarray, config_recipe: dict, published: dict, step: int, variants=VARIANTS, scales=SCALES, done=None) -> dict:
    """Correct counts of the published model on every ``step``-th rebuilt test image, per variant and scale.

    An image equal to one already classified (same bytes under another variant) keeps its prediction.
    ``done(result)``, when given, is called after each scale.
    """
    import torch

    from .engine import transform_images
    from .riesznet import load_model, predict

    torch.set_num_threads(1)
    model = load_model(str(weights))
    images, labels = test_images[::step], test_labels[::step]
    out = {"step": step, "images": len(images), "published": published, "accuracy": {}, "standard_errors_from_published": {}}
    for scale in scales:
        seen = {}
        for name, changes in variants.items():
            values = transform_images(images, np.full(len(images), scale), (112, 112), _recipe(config_recipe, changes))
            keys = [hashlib.sha256(v.astype(np.float32).tobytes()).hexdigest() for v in values]
            todo = [k for k, key in enumerate(keys) if key not in seen]
            if todo:
                for k, p in zip(todo, predict(model, values[todo]), strict=True):
                    seen[keys[k]] = int(p)
            correct = float(np.mean([seen[key] == int(label) for key, label in zip(keys, labels, strict=True)]))
            out["accuracy"].setdefault(name, {})[f"{scale:g}"] = correct
            target = published.get(f"{scale:g}")
            if target is not None:
                error = (target * (1 - target) * (1 - len(images) / 10000) / len(images)) ** 0.5
                out["standard_errors_from_published"].setdefault(name, {})[f"{scale:g}"] = (correct - target) / error
            print(f"model: s = {scale:g} {name}: {100 * correct:.2f} % ({len(todo)} new images)", file=sys.stderr, flush=True)
        if done is not None:
            done(out)
    return out


def published_counts(facts: dict) -> dict:
    """Published accuracy per scale (``{'0.5': 0.8831, ...}``) from a notebook's printed counts of test-only files."""
    from .names import parse_name

    out = {}
    for entry in facts["counts"]:
        spec = parse_name(entry["file"])
        out[f"{spec.test_scale.low:g}"] = entry["correct"] / entry["total"]
    return out


def figure_check(facts: dict, config: dict, raw_dir: Path, bootstrap: int, max_evaluations: int, done=None) -> tuple[dict, dict]:
    """The figure fit of each montage in the authors' notebook (single-scale files first); the JSON results and the analyses.

    ``done(results, analyses)``, when given, is called after each figure (so a long run keeps what it has).
    """
    from .build import load_split
    from .figure_fit import analyse_figure
    from .names import parse_name
    from .sources import BaseData

    base = BaseData.from_config("mnist", config["base_data"]["mnist"])
    raw_paths = {raw.name: str(raw_dir / raw.name) for raw in base.files.values()}
    results, analyses = {}, {}
    for figure in sorted(facts["figures"], key=lambda entry: "-" in entry["file"].rsplit("_sc", 1)[-1]):
        spec = parse_name(figure["file"])
        scale = spec.test_scale if figure["split"] == "test" else spec.train_scale
        images, labels = load_split(base, raw_paths, figure["split"], 64)
        scales = None if scale.is_range else np.full(64, scale.low)
        key = f"cell{figure['cell']}_{figure['split']}_{scale.tag}"
        print(f"figure: {key}", file=sys.stderr, flush=True)
        analysis = analyse_figure(
            figure["png"], 8, 8, "viridis", images, labels, scales, spec.out_shape, Recipe.from_config(config["recipe"]),
            scale_range=(scale.low, scale.high) if scale.is_range else None, bootstrap=bootstrap, max_evaluations=max_evaluations,
        )
        results[key] = {"file": figure["file"], "split": figure["split"], "first": 0, **analysis.result}
        analyses[key] = analysis
        if done is not None:
            done(results, analyses)
    return results, analyses


def main(argv: list[str] | None = None) -> int:
    import yaml

    parser = argparse.ArgumentParser(prog="python -m mnist_large_scale.evidence", description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default="resources/evidence", help="folder of the fetched third-party inputs (default: resources/evidence)")
    parser.add_argument("--out", default="docs/evidence", help="folder of the JSON results (default: docs/evidence)")
    parser.add_argument("--figures", default="results/evidence", help="folder of the comparison figures (default: results/evidence; they show the authors' panels)")
    parser.add_argument("--config", default="config.yaml")
    parser.add_argument("--raw-dir", default="resources/mnist")
    parser.add_argument("--offline", action="store_true", help="use only copies already in the cache")
    parser.add_argument("--model-step", type=int, default=10, help="evaluate the model on every N-th test image (default: 10)")
    parser.add_argument("--only", nargs="+", choices=("ranges", "figures", "model"), default=("ranges", "figures", "model"))
    parser.add_argument("--bootstrap", type=int, default=300)
    parser.add_argument("--max-evaluations", type=int, default=100)
    args = parser.parse_args(argv)
    try:
        paths = fetch_inputs(Path(args.cache), offline=args.offline)
    except RuntimeError as error:
        print(f"evidence: {error}", file=sys.stderr)
        return 2
    config = yaml.safe_load(Path(args.config).read_text())
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    authors, riesz = notebook_facts(paths["authors_notebook"]), notebook_facts(paths["riesznet_notebook"])
    sources = {key: {"url": url, "sha256": digest} for key, (_, url, digest) in INPUTS.items()}
    if "ranges" in args.only:
        from .idx import read_idx

        train = read_idx(Path(args.raw_dir) / "train-images-idx3-ubyte")
        ranges = {
            "sources": sources,
            "printed": {"authors_notebook": authors["ranges"], "riesznet_notebook": riesz["ranges"]},
            "variants": printed_range_check(train, config["recipe"]),
        }
        _write_json(out / "printed_ranges.json", ranges)
    if "figures" in args.only:
        from .figures import comparison_figure, save_figure

        def done(results: dict, analyses: dict) -> None:
            _write_json(out / "figures.json", {"sources": sources, "figures": results})
            Path(args.figures).mkdir(parents=True, exist_ok=True)
            for key, analysis in analyses.items():
                best = analysis.result["best_form"]
                rows = [(name, analysis.panels[:6], analysis.rendered[name][:6], (analysis.panels - analysis.rendered[name]).mean(axis=0)) for name in ("configured", best)]
                save_figure(comparison_figure(rows, f"{key}: published panel, rebuilt panel ({best} = best form), difference"), Path(args.figures) / f"{key}.png")

        figure_check(authors, config, Path(args.raw_dir), args.bootstrap, args.max_evaluations, done)
    if "model" in args.only:
        from .idx import read_idx

        test = read_idx(Path(args.raw_dir) / "t10k-images-idx3-ubyte")
        labels = read_idx(Path(args.raw_dir) / "t10k-labels-idx1-ubyte")
        def write(result: dict) -> None:
            _write_json(out / "model.json", {"sources": sources, "architecture": "re-typed from the notebook's description (mnist_large_scale.riesznet)", **result})

        model_check(paths["riesznet_weights"], test, labels, config["recipe"], published_counts(riesz), args.model_step, done=write)
    return 0


def _write_json(path: Path, data: dict) -> None:
    partial = path.with_name(path.name + ".part")
    partial.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    partial.replace(path)


if __name__ == "__main__":
    sys.exit(main())
