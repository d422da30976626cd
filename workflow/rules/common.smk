# The name grammar's bridge to Snakemake: target lists and input functions.
# Everything here parses names through mnist_large_scale.names, nowhere else.

import os
import sys
from pathlib import Path


def _workflow_dir():
    """This workflow's own workflow/ folder, the one that holds rules/ and the package.

    workflow.current_basedir, not workflow.basedir: used as a module, the
    workflow's basedir is that of the workflow using it.
    """
    try:
        return Path(workflow.current_basedir).parent
    except TypeError:  # a remote source (github(...)): its files are not on this disk
        raise ValueError(
            f"this workflow imports its package from its own files, which {workflow.current_basedir} "
            "does not give: use it from a local clone (module snakefile: a path)"
        ) from None


# The package comes from the workflow's own folder, ahead of any installed copy, so that a
# stock Snakemake reads the workflow, and the rules' scripts (Snakemake passes this process's
# sys.path on to them) run this workflow's code.  What is imported here needs only the standard
# library (tests/test_stock_snakemake.py checks it): reading the workflow needs Snakemake alone.
WORKFLOW_DIR = _workflow_dir()
if str(WORKFLOW_DIR) not in sys.path:
    sys.path.insert(0, str(WORKFLOW_DIR))

from mnist_large_scale import NUMERICS_VERSION
from mnist_large_scale.job_resources import (
    job_memory_mb,
    job_runtime_min,
    memory_problem,
    scale_problem,
)
from mnist_large_scale.layout import COMPRESSED_LAYOUT
from mnist_large_scale.names import (
    PUBLISHED_TEST_SCALES,
    InvalidName,
    check_counts,
    parse_name,
    published_names,
    scale_tag,
)
from mnist_large_scale.recipe_constants import Recipe, recorded
from mnist_large_scale.reference_config import TABLE_NAME, reference_configuration
from mnist_large_scale.sources import (
    BaseData,
    cache_path,
    damaged_raw_message,
    expected_sha256,
    raw_file_problem,
    split_overlap_problem,
)

BASES = {
    key: BaseData.from_config(key, entry) for key, entry in config["base_data"].items()
}
BASE_BY_PREFIX = {base.prefix: base for base in BASES.values()}
REFERENCE_TABLE = str(WORKFLOW_DIR / "mnist_large_scale" / TABLE_NAME)
RAW_NAMES = sorted({raw.name for base in BASES.values() for raw in base.files.values()})
# The recipe as the rules' params carry it: a key added with a default that gives the
# files built before it (smooth_boundary: canvas) is left out while it holds that default,
# so that adding the key reruns nothing.
RECIPE_PARAMS = recorded(config["recipe"])


def _check_config():
    """Config checks that the schema cannot express; they fail before any work."""
    Recipe.from_config(config["recipe"])
    if len(BASE_BY_PREFIX) != len(BASES):
        raise ValueError("config: two base_data entries share one prefix")
    for base in BASES.values():
        if base.local_dir and not (
            os.path.isdir(base.local_dir)
            and os.access(base.local_dir, os.R_OK | os.X_OK)
        ):
            raise ValueError(
                f"config: base_data.{base.key}.local_dir {base.local_dir!r} is not a readable folder"
            )
        names = {raw.name for raw in base.files.values()}
        for split_name, split in base.splits.items():
            if split.images not in names or split.labels not in names:
                raise ValueError(
                    f"config: base_data.{base.key}.splits.{split_name} names a file not in its files"
                )
            if split.stop <= split.start:
                raise ValueError(
                    f"config: base_data.{base.key}.splits.{split_name} is empty (stop <= start)"
                )
        overlap = split_overlap_problem(base.key, base.splits)
        if overlap:
            raise ValueError(overlap)
    for name in config["targets"]:
        file_spec(name)
    for name in config["evaluate"]["test_files"] or []:
        if file_spec(name).test_scale.is_range:
            raise ValueError(
                f"config: evaluate.test_files: {name} has a range of test scales, not one"
            )
    train = file_spec(config["experiment"]["train_file"])
    if train.test_only or train.train_scale.is_range:
        raise ValueError(
            f"config: experiment.train_file {train.name} must be a training file with a single training scale"
        )


# (path, mtime, size) -> what is wrong with a cached raw file (None: it matches its pins).
_RAW_PROBLEMS = {}


def damaged_raw_file(base, raw):
    """What to say of the cached copy of ``raw`` when it does not match its pins; None when it does or is absent.

    Hashed once per state of the file (its mtime and size), however many jobs ask.
    """
    path = cache_path(base, raw)
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _RAW_PROBLEMS:
        _RAW_PROBLEMS[key] = raw_file_problem(raw, path)
    problem = _RAW_PROBLEMS[key]
    return damaged_raw_message(base, raw, path, problem) if problem else None


def _warn_about_damaged_raw_files():
    """Name cached raw files that no longer match their pins; change nothing.

    Reading the workflow must not touch files (a dry run, --lint or a cluster
    job reads it too), so a damaged file stays where it is; a run that needs
    it stops while its jobs are planned (raw_inputs), before any output is
    deleted, with the way to fetch it again that deletes nothing (docs/troubleshooting.md).
    Only the main process looks; hashing the four MNIST files takes a
    fraction of a second.
    """
    for base in BASES.values():
        for raw in base.files.values():
            message = damaged_raw_file(base, raw)
            if message:
                print(f"WARNING: {message}", file=sys.stderr)


def refuse_damaged_raw_files(base):
    """Raise, while the jobs are planned, when a cached raw file of ``base`` is damaged (main process only).

    Snakemake removes a job's outputs before it runs it: a file built from the
    good bytes would be deleted by the job that then refuses the damaged input.
    Stopping here schedules nothing and deletes nothing.
    """
    if not workflow.is_main_process:
        return
    for raw in base.files.values():
        message = damaged_raw_file(base, raw)
        if message:
            raise ValueError(message)


def file_spec(name):
    """The FileSpec of a target name, checked against its base data and the engine's scales; raises with the reason."""
    spec = parse_name(name, prefixes=tuple(BASE_BY_PREFIX))
    check_counts(spec, BASE_BY_PREFIX[spec.prefix].available())
    problem = scale_problem(spec.name, largest_scale(spec))
    if problem:
        raise ValueError(problem)
    return spec


def base_of(name):
    return BASE_BY_PREFIX[file_spec(name).prefix]


def target_name(wildcards):
    """The file name of a rule's {name} wildcard, the stem of results/{name}.h5: the name with .h5.

    The stem goes through the grammar with its .h5, as a target in the config
    does, so results/<name>.h5.h5 is refused here, by the one grammar, rather
    than built and then refused by its validation.
    """
    return f"{wildcards.name}.h5"


def published_files():
    return [f"results/{name}" for name in config["targets"]]


def validation_reports():
    return [f"results/validation/{Path(name).stem}.json" for name in config["targets"]]


def checksum_files():
    return [f"results/checksums/{name}.sha256" for name in config["targets"]]


def figures():
    """Every figure of `all`: a montage per target, the scale ladder, size against
    scale, and a histogram of per-sample scales per scale-range target."""
    return [
        *(
            f"results/figures/{Path(name).stem}.montage.png"
            for name in config["targets"]
        ),
        "results/figures/scale_ladder.png",
        "results/figures/size_vs_scale.png",
        *(
            f"results/figures/{Path(name).stem}.scales.png"
            for name in config["targets"]
            if is_range_file(name)
        ),
    ]


def experiment_train_file():
    """The file the experiment trains on (config experiment.train_file)."""
    return f"results/{config['experiment']['train_file']}"


def experiment_test_files():
    """The experiment's test files: every test-only target."""
    return [
        f"results/{name}" for name in config["targets"] if file_spec(name).test_only
    ]


def evaluate_test_files():
    """The files `snakemake evaluate` tests on: config evaluate.test_files, or the 17 published test-only files."""
    names = config["evaluate"]["test_files"] or [
        name
        for name in published_names("mnist_large_scale")
        if file_spec(name).test_only
    ]
    return [f"results/{name}" for name in names]


def evaluate_inputs(wildcards):
    """What `snakemake evaluate` reads: the test files, and the model, state dict, model module and
    published counts where they are files (so that a changed one reruns the evaluation).
    """
    settings = config["evaluate"]
    if not settings["model"]:
        raise ValueError(
            "config: evaluate.model is not set (a TorchScript file, or module:callable): --config evaluate='{model: ...}'"
        )
    inputs = {"tests": evaluate_test_files()}
    model = settings["model"]
    model_module = model.rpartition(":")[0] if ":" in model else ""
    if model_module.endswith(".py"):
        inputs["model_module"] = model_module
    elif not model_module:
        inputs["model"] = model
    for key in ("state_dict", "published_counts"):
        if settings[key]:
            inputs[key] = settings[key]
    return inputs


def family(key):
    """What `snakemake family_<key>` makes: the 21 published names with the base's prefix,
    each file with its validation report and its line of SHA256SUMS."""
    names = published_names(BASES[key].prefix)
    return [
        *(f"results/{name}" for name in names),
        *(f"results/validation/{Path(name).stem}.json" for name in names),
        *(f"results/checksums/{name}.sha256" for name in names),
    ]


def is_range_file(name):
    spec = file_spec(name)
    return any(spec.split_scale(split).is_range for split in ("train", "val", "test"))


def ladder_base():
    """The base data of the scale ladder: that of the first target (or the first base)."""
    return (
        base_of(config["targets"][0])
        if config["targets"]
        else next(iter(BASES.values()))
    )


def ladder_inputs(wildcards):
    """The raw files of the ladder's base, and a target per published test scale
    whose test split can give that column (112 x 112, one scale; test-only first)."""
    base = ladder_base()
    refuse_damaged_raw_files(base)
    inputs = {raw.name: str(cache_path(base, raw)) for raw in base.files.values()}
    tags = {scale_tag(scale) for scale in PUBLISHED_TEST_SCALES}
    for name in sorted(
        config["targets"], key=lambda name: not file_spec(name).test_only
    ):
        spec = file_spec(name)
        tag = spec.test_scale.tag
        usable = spec.prefix == base.prefix and spec.out_shape == (112, 112)
        if usable and not spec.test_scale.is_range and tag in tags:
            inputs.setdefault(f"scale_{tag}", f"results/{name}")
    return inputs


def raw_inputs(wildcards):
    """The raw files a file is built from, by file name (parses the name: bad names fail here).

    Plain inputs, not ancient(): Snakemake 9 leaves out the consumers of an
    ancient() input whose producer reruns in the same run (a fetch killed and
    resumed), even consumers whose outputs are missing, so that run would end
    without building.  A raw file fetched again rebuilds what uses it.
    """
    base = base_of(target_name(wildcards))
    refuse_damaged_raw_files(base)
    refuse_what_the_run_cannot_hold(wildcards)
    return {raw.name: str(cache_path(base, raw)) for raw in base.files.values()}


def base_key(wildcards):
    return base_of(target_name(wildcards)).key


# Parameters: exactly the values that change an output's bytes, so that Snakemake reruns a job
# when one of them changes ("Params have changed") and for nothing else.  Values that change
# no byte (mirrors, timeouts, local_dir, output.chunk_images, output.direct_io) reach the
# scripts through snakemake.config, which Snakemake does not compare between runs.


def base_params(wildcards):
    """A file's base data as far as its bytes go: splits, the raw files' pins, the citation, the licence.

    Enough for BaseData.from_config; the sources (local_dir, mirrors, npm,
    timeout) are left out: they decide where the pinned bytes come from, not
    what they are.
    """
    return base_pins(base_key(wildcards))


def base_pins(key):
    """The byte-relevant part of config["base_data"][key] (see base_params)."""
    entry = config["base_data"][key]
    return {
        "prefix": entry["prefix"],
        # the uncompressed sha256, or the .gz's for a file pinned by its .gz alone
        "files": {
            role: {
                key: raw[key]
                for key in ("name", "size", "sha256", "gz_sha256")
                if key in raw
            }
            for role, raw in entry["files"].items()
        },
        "splits": entry["splits"],
        "citation": entry.get("citation", ""),
        "license": entry.get("license", ""),
    }


def scale_seed(wildcards):
    """The seed, for a file with per-sample scales; None for the others (their bytes ignore it)."""
    return config["scale_seed"] if is_range_file(target_name(wildcards)) else None


def storage_params(wildcards):
    """The output options that change a file's bytes: dtype, compression and (compressed) shuffle.

    output.chunk_images is only the number of images per step (a compressed
    file's HDF5 chunks hold one image whatever it is; tests/test_build.py checks
    that the bytes do not depend on it), output.direct_io only how they are written.
    A compressed file's params also name its chunk layout, so that files written
    with the earlier 64-image chunks are rebuilt; the published layout's params
    are unchanged.
    """
    options = {key: config["output"][key] for key in ("dtype", "compression")}
    if options["compression"]:
        options["shuffle"] = config["output"].get("shuffle", True)
        options["compressed_layout"] = COMPRESSED_LAYOUT
    return options


def raw_pin(wildcards):
    """What fetch_raw delivers: the pinned name, size and sha256 (or .gz sha256) of one raw file."""
    raw = BASES[wildcards.base].file_by_name(wildcards.file)
    return {"name": raw.name, "size": raw.size, "sha256": raw.pin}


def largest_scale(spec):
    """The largest scale of a file: the top of a range, the largest of its splits."""
    return max(spec.split_scale(split).high for split in ("train", "val", "test"))


def run_memory_limit_mb():
    """The run's mem_mb limit (--resources mem_mb, the profile's), or None when it sets none."""
    settings = workflow.resource_settings
    limit = settings.resources.get("mem_mb") if settings else None
    value = getattr(limit, "value", None) if limit is not None else None
    return int(value) if isinstance(value, (int, float)) else None


def job_mem_mb(wildcards):
    """A build or validation job's memory, from the name's output size, block size, scale and counts.

    Validation reads the file in blocks of the same size (measured 200-265 MB
    at 112 x 112, 466 MB at 224 x 224 and 1.5 GB at 448 x 448, with 1000
    images a block): the build's bound covers it.
    """
    spec = file_spec(target_name(wildcards))
    largest_split = max(spec.split_count(split) for split in ("train", "val", "test"))
    return job_memory_mb(
        spec.out_shape,
        config["output"]["chunk_images"],
        scale=largest_scale(spec),
        images=largest_split,
    )


def refuse_what_the_run_cannot_hold(wildcards):
    """Raise, while the jobs are planned, when a job needs more memory than the run's mem_mb limit.

    Snakemake would silently lower the job's declaration to the limit and
    evaluates resources only when the job is about to run (after its raw
    files are fetched); an input function runs while the DAG is built, before
    any job.  Main process only: a cluster job's node has its own limit.
    """
    if workflow.is_main_process:
        problem = memory_problem(
            target_name(wildcards), job_mem_mb(wildcards), run_memory_limit_mb()
        )
        if problem:
            raise ValueError(problem)


def job_runtime(wildcards):
    """A build or validation job's time limit in minutes, from the name's images, size and scale."""
    spec = file_spec(target_name(wildcards))
    images = sum(spec.split_count(split) for split in ("train", "val", "test"))
    return job_runtime_min(spec.out_shape, images, scale=largest_scale(spec))


def raw_sha256(wildcards):
    """The sha256 fetch_raw's output must have: the pinned one, or for a file pinned by its
    .gz alone the one the fetch recorded from the verified .gz."""
    raw = BASES[wildcards.base].file_by_name(wildcards.file)
    return expected_sha256(raw, f"resources/{wildcards.base}/{raw.name}") or raw.pin


def keep_symlinked_folders():
    """Put a .keep file into every empty output folder that is a symlink (results/ on a bigger disk).

    After a failed run, Snakemake removes the empty folders of the outputs it
    did not make with os.removedirs, which cannot remove a symlink: the run
    would end with NotADirectoryError after the real error.  A folder that
    holds a file is not empty, and is left alone.  Runs from onstart (a real
    run, not a dry run or --lint), and only where a folder is a symlink.
    """
    folders = ["results", "results/validation", "results/checksums", "results/figures"]
    folders += [f"resources/{key}" for key in BASES]
    for folder in folders:
        path = Path(folder)
        if path.is_symlink() and path.is_dir() and not any(path.iterdir()):
            (path / ".keep").write_text(
                "Keeps this symlinked folder from being empty: Snakemake cannot remove an empty symlinked folder "
                "after a failed run (NotADirectoryError).\n"
            )


_check_config()
if workflow.is_main_process:
    _warn_about_damaged_raw_files()


wildcard_constraints:
    name=r"[^/]+",
    base="|".join(BASES),
    file="|".join(RAW_NAMES),
