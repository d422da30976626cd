"""`make cross-check`: the same small files built in other environments, compared.

Builds four small files, a test-only file at a published scale below 1, one
above 4, a small range file and a test-only file at scale 8 smoothed on the
frame itself (``FILES``; ``RECIPE_CHANGES`` names the recipe that is not the
config's), with the package's own command
``python -m mnist_large_scale build NAME --raw-dir DIR --out FILE`` in each
environment that can be had here:

``main``
    this interpreter (the project's .venv: numpy 2, OpenBLAS from its wheel);
``main-x86-64-v2``
    the same with numpy's SIMD dispatch limited to its x86-64-v2 baseline
    (``NPY_DISABLE_CPU_FEATURES``; x86_64 only), as on a CPU without AVX2;
``numpy1``
    .venv-np1, the oldest numpy major version the package supports (numpy
    1.26.4 and the versions in envs/requirements-np1.txt), made by
    ``make .venv-np1/.installed``;
``aarch64``, ``aarch64-openblas``
    Debian bookworm's own arm64 python3, numpy (1.24) and h5py, run under
    ``qemu-aarch64-static -L ROOT``, the root made by benchmarks/arm64_root.sh;
    first with Debian's reference BLAS (what the libblas.so.3 alternative gives
    without OpenBLAS), then with Debian's OpenBLAS.

Every file's sha256 and the sha256 of its datasets' values
(``mnist_large_scale.digest``) are computed here, by the main environment, and
compared with the main environment's.  One more file, ``container_check.h5``, is
written by each environment through the package's writer with values and attributes
that cannot depend on the machine: its sha256 tells whether that environment's
HDF5 library writes the same container bytes as the main one.  Prints a table: environment, machine,
numpy, h5py, BLAS, file, sha256, values digest, match (``bytes``: the same file;
``values``: other container bytes but the same values, with the root attributes
that differ; ``NO``: other values) and the other environments with the same values; writes it
to ``--json`` too.  Exit status 1
when any environment that ran gives other values, 0 otherwise (an environment
that cannot be had is reported and skipped).

    python -m benchmarks.cross_env [--envs main,main-x86-64-v2,numpy1,aarch64,aarch64-openblas]
                                   [--raw-dir resources/mnist] [--json benchmarks/cross_env.json]

``build_file_in`` and ``run_probe`` are shared with tests/test_same_bytes.py: each
build runs the package's command line in the same process as a probe that
prints, on stderr, what that interpreter really runs with (machine, numpy
version, numpy's SIMD dispatch targets on and off, the BLAS library and its
kernel), so that a caller can check that an environment variable took effect.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.provenance import provenance

REPO = Path(__file__).resolve().parents[1]

#: Test-only at scale 2^(-1/2), test-only at 2^(5/2), a range file (per-sample scales), and a
#: test-only file at scale 8 with the frame's edge folded into the smoothing (RECIPE_CHANGES).
FILES = (
    "mnist_large_scale_te200_outsize112-112_scte0p707.h5",
    "mnist_large_scale_te200_outsize112-112_scte5p657.h5",
    "mnist_large_scale_tr200_vl50_te50_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5",
    "mnist_large_scale_te200_outsize112-112_scte8p000.h5",
)

#: Files built with a recipe other than config.yaml's: the recipe keys that change.
RECIPE_CHANGES = {"mnist_large_scale_te200_outsize112-112_scte8p000.h5": {"smooth_boundary": "reflect"}}

#: Not a build: CONTAINER's file, the same values and attributes everywhere (HDF5 container bytes only).
CONTAINER_FILE = "container_check.h5"

ARM64_ROOT = REPO / ".cross" / "arm64-root"
NUMPY1_PYTHON = REPO / ".venv-np1" / "bin" / "python"

# `python -c RUNNER build NAME ...`: PRELUDE's probe, then the package's own command line.
PRELUDE = r"""
import json, platform, runpy, sys
import numpy, h5py
try:
    from numpy._core._multiarray_umath import __cpu_features__, __cpu_baseline__, __cpu_dispatch__
except ImportError:  # numpy 1.x
    from numpy.core._multiarray_umath import __cpu_features__, __cpu_baseline__, __cpu_dispatch__
try:
    from threadpoolctl import threadpool_info
    blas = [{k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")} for info in threadpool_info() if info.get("user_api") == "blas"]
except Exception as error:
    blas = [{"error": repr(error)}]
with open("/proc/self/maps") as maps:
    libraries = sorted({line.split()[-1] for line in maps if "blas" in line.lower() or "lapack" in line.lower()})
probe = {
    "machine": platform.machine(), "python": platform.python_version(), "numpy": numpy.__version__, "h5py": h5py.__version__,
    "cpu_baseline": list(__cpu_baseline__), "cpu_dispatch": {name: bool(__cpu_features__.get(name)) for name in __cpu_dispatch__},
    "blas": blas, "blas_libraries": libraries,
}
sys.stderr.write("PROBE " + json.dumps(probe) + "\n")
sys.stderr.flush()
"""
RUNNER = PRELUDE + r"""
sys.argv = ["python -m mnist_large_scale", *sys.argv[1:]]
runpy.run_module("mnist_large_scale", run_name="__main__", alter_sys=True)
"""

# `python -c CONTAINER RAW_DIR OUT`: the writer's layout with values and attributes that
# cannot depend on the machine (raw digits pasted into a 112 x 112 frame, scales 2^-k,
# a constant title), so that equal sha256 means the same HDF5 container bytes and
# unequal sha256 can only come from the HDF5 library (or h5py) writing other bytes.
CONTAINER = PRELUDE + r"""
import numpy as np
from mnist_large_scale.idx import read_idx
from mnist_large_scale.writer import SplitData, write_file
raw, out = sys.argv[1], sys.argv[2]
images = read_idx(raw + "/train-images-idx3-ubyte", ndim=3)[:90]
labels = read_idx(raw + "/train-labels-idx1-ubyte", ndim=1)[:90]
def pasted(images, scales, out):
    out[...] = 0.0
    out[:, 42:70, 42:70] = images
    return out
splits = {
    "train": SplitData(images[:50], labels[:50], 2.0 ** -np.arange(50), single=False, store_scales=True),
    "val": SplitData(images[50:60], labels[50:60], np.ones(10), single=False, store_scales=False),
    "test": SplitData(images[60:90], labels[60:90], np.ones(30), single=False, store_scales=False),
}
try:
    from mnist_large_scale.writer import OutputOptions
    storage = {"options": OutputOptions(chunk_images=16)}
except ImportError:  # the writer before OutputOptions
    storage = {"chunk_images": 16}
write_file(out, splits, pasted, (112, 112), {"title": "container check", "count": 90}, **storage)
print(json.dumps({"seconds": 0}))
"""


@dataclass
class Environment:
    """An interpreter to build with: its command and environment variables."""

    name: str
    command: list[str]
    env: dict[str, str]
    missing: str | None = None  # why it cannot be had here, or None
    notes: list[str] = field(default_factory=list)


def config_for(name: str, folder: Path) -> Path:
    """The config that ``name`` is built with: config.yaml, or a copy in ``folder`` with its ``RECIPE_CHANGES``."""
    changes = RECIPE_CHANGES.get(name)
    if not changes:
        return REPO / "config.yaml"
    import yaml

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["recipe"].update(changes)
    path = Path(folder) / f"{name}.config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def build_file_in(command, env, name, out, raw_dir, threads=1, chunk_images=None, buffered=False, timeout=1800) -> dict:
    """Build ``name`` into ``out`` with ``command`` (an interpreter) and ``env``; return what happened.

    Returns a dict: ``returncode``, ``seconds`` (wall, whole process), ``build_seconds``
    (as the command reports), ``probe`` (see RUNNER), ``stderr`` (tail, on failure).
    """
    args = [*command, "-c", RUNNER, "build", name, "--raw-dir", str(raw_dir), "--out", str(out),
            "--config", str(config_for(name, Path(out).parent)), "--threads", str(threads)]
    if chunk_images:
        args += ["--chunk-images", str(chunk_images)]
    if buffered:
        args.append("--buffered")
    start = time.perf_counter()
    done = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - start
    probe = next((json.loads(line[6:]) for line in done.stderr.splitlines() if line.startswith("PROBE ")), None)
    try:
        build_seconds = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
    except (IndexError, ValueError, KeyError):
        build_seconds = None
    return {"returncode": done.returncode, "seconds": seconds, "build_seconds": build_seconds, "probe": probe,
            "stderr": done.stderr[-3000:] if done.returncode else ""}


def container_check_in(command, env, out, raw_dir, timeout=600) -> dict:
    """Write CONTAINER's file with ``command`` and ``env``; return ``returncode``, ``seconds``, ``probe``, ``stderr``."""
    start = time.perf_counter()
    done = subprocess.run([*command, "-c", CONTAINER, str(raw_dir), str(out)], env=env, cwd=REPO, capture_output=True, text=True, timeout=timeout)
    probe = next((json.loads(line[6:]) for line in done.stderr.splitlines() if line.startswith("PROBE ")), None)
    return {"returncode": done.returncode, "seconds": time.perf_counter() - start, "probe": probe, "stderr": done.stderr[-3000:] if done.returncode else ""}


def base_env(pythonpath: bool = True) -> dict[str, str]:
    """This process's environment without numpy dispatch limits, with the repository's workflow/ on PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if k not in ("NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")}
    if pythonpath:
        env["PYTHONPATH"] = os.pathsep.join([str(REPO / "workflow"), *filter(None, [env.get("PYTHONPATH")])])
    return env


def blas_summary(probe: dict | None) -> str:
    """One line on the BLAS an interpreter runs: threadpoolctl's view, else the mapped library."""
    if not probe:
        return "?"
    for info in probe.get("blas", []):
        if info.get("internal_api"):
            return f"{info['internal_api']} {info.get('version')} {info.get('architecture')}"
    return ", ".join(Path(lib).name + f" ({Path(lib).parent.name})" for lib in probe.get("blas_libraries", [])) or "?"


def environments(names: list[str]) -> list[Environment]:
    """The environments asked for, each with ``missing`` set when it cannot be had here."""
    found = []
    for name in names:
        if name == "main":
            found.append(Environment(name, [sys.executable], base_env()))
        elif name == "main-x86-64-v2":
            env = base_env()
            try:
                from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__
            except ImportError:  # numpy 1.x
                from numpy.core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__
            env["NPY_DISABLE_CPU_FEATURES"] = " ".join(t for t in __cpu_dispatch__ if t not in __cpu_baseline__)
            missing = None if platform.machine() in ("x86_64", "AMD64") else "numpy's x86 dispatch levels exist on x86_64 only"
            found.append(Environment(name, [sys.executable], env, missing, [f"NPY_DISABLE_CPU_FEATURES={env['NPY_DISABLE_CPU_FEATURES']}"]))
        elif name == "numpy1":
            missing = None if NUMPY1_PYTHON.exists() else f"{NUMPY1_PYTHON} missing: run `make .venv-np1/.installed`"
            found.append(Environment(name, [str(NUMPY1_PYTHON)], base_env(), missing))
        elif name in ("aarch64", "aarch64-openblas"):
            qemu = shutil.which("qemu-aarch64-static")
            missing = None
            if platform.machine() == "aarch64":
                missing = "this machine is aarch64 itself: build in its own environment instead"
            elif not qemu:
                missing = "qemu-aarch64-static not found (apt-get install qemu-user-static)"
            elif not (ARM64_ROOT / ".ready").exists():
                missing = f"no aarch64 root at {ARM64_ROOT}: run `bash benchmarks/arm64_root.sh` (needs root and Debian's packages)"
            # OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE name x86 kernels and caches: not passed to an arm64 OpenBLAS.
            env = {k: v for k, v in base_env().items() if not k.startswith("OPENBLAS_")}
            notes = ["OPENBLAS_* not passed (x86 settings)"]
            if name == "aarch64-openblas":
                env["LD_LIBRARY_PATH"] = "/usr/lib/aarch64-linux-gnu/openblas-pthread"  # a guest path: qemu -L maps it
            found.append(Environment(name, [qemu or "qemu-aarch64-static", "-L", str(ARM64_ROOT), str(ARM64_ROOT / "usr/bin/python3")], env, missing, notes))
        else:
            raise ValueError(f"unknown environment {name!r}")
    return found


def root_attrs_that_differ(a: Path, b: Path) -> list[str]:
    """Names of root attributes whose values differ between two HDF5 files."""
    import h5py

    with h5py.File(a, "r") as ha, h5py.File(b, "r") as hb:
        keys = set(ha.attrs) | set(hb.attrs)
        return sorted(k for k in keys if k not in ha.attrs or k not in hb.attrs or str(ha.attrs[k]) != str(hb.attrs[k]))


def raw_dir_or_fetch(raw_dir: Path) -> Path:
    """``raw_dir`` with the four verified raw MNIST files, fetched through the configured sources when missing."""
    import yaml

    from mnist_large_scale.fetch import fetch_raw_file
    from mnist_large_scale.sources import BaseData

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    base = BaseData.from_config("mnist", config["base_data"]["mnist"])
    for raw in base.files.values():
        if not (raw_dir / raw.name).is_file():
            fetch_raw_file(base, raw.name, raw_dir / raw.name)
    return raw_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", default="main,main-x86-64-v2,numpy1,aarch64,aarch64-openblas", help="comma-separated environments (default: all)")
    parser.add_argument("--raw-dir", type=Path, default=REPO / "resources" / "mnist")
    parser.add_argument("--work", type=Path, default=None, help="folder for the built files (default: a temporary one, removed)")
    parser.add_argument("--json", type=Path, default=REPO / "benchmarks" / "cross_env.json")
    args = parser.parse_args(argv)
    from mnist_large_scale.digest import file_sha256, values_sha256

    raw_dir = raw_dir_or_fetch(args.raw_dir.resolve())
    names = [n.strip() for n in args.envs.split(",") if n.strip()]
    if names[0] != "main":
        names.insert(0, "main")  # the reference
    work = args.work or Path(tempfile.mkdtemp(prefix="cross_env_"))
    rows, skipped, reference = [], [], {}
    try:
        for env in environments(names):
            if env.missing:
                skipped.append({"environment": env.name, "why": env.missing})
                print(f"{env.name}: skipped, {env.missing}", flush=True)
                continue
            (work / env.name).mkdir(parents=True, exist_ok=True)
            for name in (*FILES, CONTAINER_FILE):
                out = work / env.name / name
                if name == CONTAINER_FILE:
                    record = container_check_in(env.command, env.env, out, raw_dir)
                else:
                    record = build_file_in(env.command, env.env, name, out, raw_dir)
                probe = record["probe"] or {}
                row = {"environment": env.name, "machine": probe.get("machine"), "numpy": probe.get("numpy"), "h5py": probe.get("h5py"),
                       "blas": blas_summary(probe), "file": name, "seconds": round(record["seconds"], 2),
                       "notes": env.notes}
                if record["returncode"]:
                    row.update(sha256=None, values_sha256=None, match="FAILED", error=record["stderr"].strip().splitlines()[-1:])
                    print(f"{env.name} {name}: build failed\n{record['stderr']}", file=sys.stderr, flush=True)
                else:
                    row.update(sha256=file_sha256(out), values_sha256=values_sha256(out))
                    if env.name == "main":
                        reference[name] = (row["sha256"], row["values_sha256"], out)
                        row["match"] = "reference"
                    elif name not in reference:
                        row["match"] = "no reference"
                    elif row["sha256"] == reference[name][0]:
                        row["match"] = "bytes"
                    elif row["values_sha256"] == reference[name][1]:
                        row["match"] = "values"
                        row["attrs_differ"] = root_attrs_that_differ(reference[name][2], out)
                    else:
                        row["match"] = "NO"
                        row["attrs_differ"] = root_attrs_that_differ(reference[name][2], out)
                rows.append(row)
                print(f"  {env.name:17} {name[:60]:60} {row['match']} ({row['seconds']} s)", flush=True)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    print_table(rows, skipped)
    report = {**provenance("benchmarks.cross_env"), "files": rows, "skipped": skipped}
    args.json.write_text(json.dumps(report, indent=1) + "\n")
    print(f"written: {args.json}")
    bad = [r for r in rows if r["match"] in ("NO", "FAILED")]
    return 1 if bad else 0


def print_table(rows: list[dict], skipped: list[dict]) -> None:
    header = ("environment", "machine", "numpy", "h5py", "BLAS", "file", "sha256", "values digest", "match", "same values as")
    lines = [header]
    for r in rows:
        short = r["file"].replace("mnist_large_scale_", "").replace("_outsize112-112", "").replace(".h5", "")
        same = [o["environment"] for o in rows if o is not r and o["file"] == r["file"] and r["values_sha256"] and o["values_sha256"] == r["values_sha256"]]
        lines.append((r["environment"], r["machine"] or "?", r["numpy"] or "?", r["h5py"] or "?", r["blas"], short,
                      (r["sha256"] or "-")[:16], (r["values_sha256"] or "-")[:16], r["match"], ",".join(same) or "-"))
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    for line in lines:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)))
    for r in rows:
        if r.get("attrs_differ"):
            print(f"{r['environment']} {r['file']}: root attributes that differ from main's: {', '.join(r['attrs_differ'])}")
    notes = {}
    for r in rows:
        notes.setdefault(r["environment"], r.get("notes"))
    for environment, note in notes.items():
        if note:
            print(f"{environment}: {'; '.join(note)}")
    print(f"{CONTAINER_FILE}: not a build; the writer's layout with the same values and attributes everywhere, so its sha256 "
          "differs only where the HDF5 library (h5py) writes other container bytes")
    for s in skipped:
        print(f"{s['environment']}: skipped, {s['why']}")


if __name__ == "__main__":
    sys.exit(main())
