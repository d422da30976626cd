"""The ``evaluate`` and ``compare-model`` commands of ``python -m mnist_large_scale``.

``evaluate`` runs a model over test files (by default the 17 published
test-only files under ``results/``) and writes a TSV, a JSON report and a
figure; ``compare-model`` runs it over two versions of one file and prints
the paired comparison's verdict.  The command line's ``main`` turns a bad
model, option or file into one line and exit status 2; ``compare-model`` exits with 1 when the model
sees a difference.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..names import PUBLISHED_TEST_SCALES, scale_tag

__all__ = ["add_commands", "compare_model", "evaluate", "published_test_files"]


def published_test_files(folder: str = "results", prefix: str = "mnist_large_scale") -> list[str]:
    """The 17 published test-only files (10,000 images at 112 x 112, s = 0.5 .. 8) in ``folder``."""
    return [str(Path(folder) / f"{prefix}_te10000_outsize112-112_scte{scale_tag(scale)}.h5") for scale in PUBLISHED_TEST_SCALES]


def _model_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="a TorchScript file, or module:callable returning a torch.nn.Module (module: dotted name or path of a .py file)")
    parser.add_argument("--state-dict", help="a state-dict file (torch.save(module.state_dict())) for module:callable")
    parser.add_argument("--channels", choices=("first", "last"), default="first", help="images as (n, 1, H, W) or as stored, (n, H, W, 1) (default: first)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="of the images handed to the model (default: float32)")
    parser.add_argument("--transform", default="none", help="value transform of each batch: none, affine:A,B (A x + B) or module:callable (default: none)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or mps: where the model runs and the batches go (default: cpu)")
    parser.add_argument("--batch-size", type=int, default=500, help="images per block read and per call of the model (default: 500)")
    parser.add_argument("--workers", type=int, default=2, help="reading threads (default: 2)")
    parser.add_argument("--max-images", type=int, default=None, metavar="N", help="only the first N images of each file (default: all)")


def add_commands(commands) -> None:
    """Add ``evaluate`` and ``compare-model`` to the command line's subparsers."""
    evaluate = commands.add_parser(
        "evaluate",
        help="evaluate a model at each test scale: accuracy with intervals, confusion matrices, summary measures",
        description="Evaluate a model on the test split of each file: per scale the accuracy with its 95 %% Wilson interval, "
        "the confusion matrix and the count of images; summary measures of scale generalisation; a TSV, a JSON report and a "
        "figure. With --published-counts, each scale's accuracy is compared with a published one.",
    )
    evaluate.add_argument("files", nargs="*", metavar="FILE", help="test files, one scale each (default: the 17 published test-only files in results/)")
    _model_options(evaluate)
    evaluate.add_argument("--train-scale", type=float, help="the scale the model was trained at: marked in the figure, centre of the summary measures")
    evaluate.add_argument("--published-counts", metavar="TSV", help="published correct counts per scale (columns: scale, correct, total) to compare with")
    evaluate.add_argument("--out", default="evaluation", help="prefix of the outputs: <out>.tsv, <out>.json, <out>.png (default: evaluation)")
    compare = commands.add_parser(
        "compare-model",
        help="run one model on two versions of a file and say whether it can tell them apart",
        description="Run one model on two versions of one file (the same images, e.g. a published file and its rebuild), image "
        "by image: accuracy on each, their difference with a 95 %% interval, McNemar's test, the images whose prediction changes, "
        "and a one-line verdict. Exits with 1 when the model sees a difference.",
    )
    compare.add_argument("first", help="the first version (e.g. the published file)")
    compare.add_argument("second", help="the second version (e.g. the rebuild)")
    _model_options(compare)
    compare.add_argument("--report", metavar="JSON", help="write the comparison here")
    compare.add_argument("--changed", metavar="TSV", help="write the images whose prediction changes here (index, label, prediction on each file)")


def _settings(args):
    from .model import InputConvention
    from .run import EvaluationSettings

    if args.batch_size < 1 or args.workers < 1 or (args.max_images is not None and args.max_images < 1):
        raise ValueError("--batch-size, --workers and --max-images must be >= 1")
    return InputConvention(args.channels, args.dtype, args.transform), EvaluationSettings(args.batch_size, args.workers, args.device, args.max_images)


def evaluate(args) -> int:
    from .pipeline import run_evaluation

    files = args.files or published_test_files()
    missing = [path for path in files if not Path(path).is_file()]
    if missing:
        names = " ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
        raise ValueError(f"no such file: {names} (build the published test files with: snakemake --cores 2 {' '.join(missing)})")
    convention, settings = _settings(args)
    run_evaluation(
        args.model,
        files,
        table=f"{args.out}.tsv",
        report=f"{args.out}.json",
        figure=f"{args.out}.png",
        state_dict=args.state_dict,
        train_scale=args.train_scale,
        convention=convention,
        settings=settings,
        published_counts=args.published_counts,
    )
    print(f"table: {args.out}.tsv; report: {args.out}.json; figure: {args.out}.png", file=sys.stderr)
    return 0


def compare_model(args) -> int:
    from .pipeline import run_model_comparison, write_changed_images

    convention, settings = _settings(args)
    comparison = run_model_comparison(args.model, args.first, args.second, report=args.report, state_dict=args.state_dict, convention=convention, settings=settings)
    print(f"{comparison.first}: accuracy {comparison.accuracy_first:.4f} [{comparison.interval_first[0]:.4f}, {comparison.interval_first[1]:.4f}]")
    print(f"{comparison.second}: accuracy {comparison.accuracy_second:.4f} [{comparison.interval_second[0]:.4f}, {comparison.interval_second[1]:.4f}]")
    print(f"correct in both {comparison.table['both']}, first only {comparison.table['first_only']}, second only {comparison.table['second_only']}, neither {comparison.table['neither']}")
    for row in comparison.changed_images[:20]:
        print(f"  image {row['index']}: label {row['label']}, predicted {row['first']} then {row['second']}")
    if comparison.changed > 20:
        print(f"  ... {comparison.changed - 20} more" + (f" (all in {args.changed})" if args.changed else " (--changed TSV lists them)"))
    if args.changed:
        write_changed_images(comparison, args.changed)
    print(comparison.line)
    return 1 if comparison.verdict == "differs" else 0

