"""One sha256 per file on every machine: the same small files built under machine variants.

Four small files (``benchmarks.cross_env.FILES``: a test-only file at scale
0.707, one at 5.657, a range file and one at scale 8 smoothed on the frame with
``recipe.smooth_boundary: reflect``) are built with the package's command line,
``python -m mnist_large_scale build NAME --raw-dir DIR --out FILE --threads N
--chunk-images K [--buffered]``, each in a fresh process, under variants that
change one thing at a time from a native default (OpenBLAS's own kernel, numpy's
full SIMD dispatch, 1 thread, 1000 images a block, direct I/O):

- OpenBLAS kernels Prescott, Sandybridge, Haswell (``OPENBLAS_CORETYPE``);
  skipped, saying why, when this process's environment already sets
  ``OPENBLAS_CORETYPE`` (some processors need it; it is left as it is);
- numpy's dispatch limited to the x86-64-v2 baseline and to AVX2
  (``NPY_DISABLE_CPU_FEATURES``; x86_64 only);
- 2 engine threads; 7 images a block; buffered I/O;
- all at once (Sandybridge where kernels may be set, the baseline, 2 threads,
  blocks of 7, buffered).

Every build's process reports what it really ran with (see
``benchmarks.cross_env.RUNNER``); a variant whose setting did not take effect
fails.  Then each file must have one sha256, and one digest of its values
(``mnist_large_scale.digest.values_sha256``), across all variants that ran.
Timings are printed at the end and written to .pytest_cache/same_bytes.json.

    pytest tests/test_same_bytes.py -ra
    MNIST_CROSS_ENV=1 pytest tests/test_same_bytes.py   # also `make cross-check`'s environments
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from benchmarks.cross_env import FILES, base_env, blas_summary, build_file_in
from conftest import REPO
from mnist_large_scale.digest import file_sha256, values_sha256

try:
    from numpy._core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__
except ImportError:  # numpy 1.x
    from numpy.core._multiarray_umath import __cpu_baseline__, __cpu_dispatch__, __cpu_features__

X86 = platform.machine() in ("x86_64", "AMD64")
INHERITED_CORETYPE = os.environ.get("OPENBLAS_CORETYPE")
KERNELS_SKIP = (
    f"OPENBLAS_CORETYPE={INHERITED_CORETYPE} is set in this environment (some processors need it): left as it is, "
    "so the OpenBLAS kernel variants cannot be run here"
    if INHERITED_CORETYPE
    else None
)
# numpy's x86 dispatch targets at or below AVX2 (names of numpy 1.x and of numpy 2.x's X86_V* groups)
AT_MOST_AVX2 = {"SSE", "SSE2", "SSE3", "SSSE3", "SSE41", "POPCNT", "SSE42", "X86_V2", "AVX", "F16C", "FMA3", "AVX2", "X86_V3"}


@dataclass(frozen=True)
class Variant:
    name: str
    kernel: str | None = None  # OPENBLAS_CORETYPE to set; None: inherited (OpenBLAS's own choice when unset)
    numpy_level: str | None = None  # "baseline" or "avx2"; None: numpy's full dispatch
    threads: int = 1
    chunk_images: int = 1000
    buffered: bool = False

    def skip_reason(self) -> str | None:
        if self.kernel and KERNELS_SKIP:
            return KERNELS_SKIP
        if self.numpy_level and not X86:
            return f"numpy's x86 dispatch levels do not exist on {platform.machine()}"
        if self.numpy_level == "avx2" and not any(__cpu_features__.get(t) for t in ("AVX2", "X86_V3")):
            return "this CPU has no AVX2"
        if self.numpy_level and not disabled_targets(self.numpy_level):
            return f"this numpy dispatches nothing above the {self.numpy_level} level"
        return None


def disabled_targets(level: str) -> list[str]:
    """numpy's dispatch targets that NPY_DISABLE_CPU_FEATURES turns off to limit numpy to ``level``."""
    if level == "baseline":
        return [t for t in __cpu_dispatch__ if t not in __cpu_baseline__]
    return [t for t in __cpu_dispatch__ if t not in AT_MOST_AVX2 and t not in __cpu_baseline__]


VARIANTS = [
    Variant("native"),
    Variant("openblas-prescott", kernel="Prescott"),
    Variant("openblas-sandybridge", kernel="Sandybridge"),
    Variant("openblas-haswell", kernel="Haswell"),
    Variant("numpy-x86-64-v2", numpy_level="baseline"),
    Variant("numpy-avx2", numpy_level="avx2"),
    Variant("threads-2", threads=2),
    Variant("chunk-images-7", chunk_images=7),
    Variant("buffered-io", buffered=True),
    Variant(
        "combined",
        kernel=None if KERNELS_SKIP else "Sandybridge",
        numpy_level="baseline" if X86 else None,
        threads=2,
        chunk_images=7,
        buffered=True,
    ),
]


def variant_env(variant: Variant) -> dict[str, str]:
    env = base_env()  # also drops any NPY_DISABLE/ENABLE_CPU_FEATURES of this process
    if variant.kernel:
        env["OPENBLAS_CORETYPE"] = variant.kernel
    if variant.numpy_level:
        env["NPY_DISABLE_CPU_FEATURES"] = " ".join(disabled_targets(variant.numpy_level))
    return env


@pytest.fixture(scope="session")
def same_bytes_builds(tmp_path_factory, mnist_dir, request):
    """Every (variant, file) build that can run here: {variant name: {file: record}}."""
    work = tmp_path_factory.mktemp("same_bytes")
    jobs = [(v, name) for v in VARIANTS if not v.skip_reason() for name in FILES]

    def run(job):
        variant, name = job
        out = work / variant.name / name
        out.parent.mkdir(exist_ok=True)
        record = build_file_in(
            [sys.executable], variant_env(variant), name, out, mnist_dir, variant.threads, variant.chunk_images, variant.buffered, timeout=600
        )
        if record["returncode"] == 0:
            record.update(sha256=file_sha256(out), values_sha256=values_sha256(out))
            out.unlink()
        return job, record

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=2) as pool:  # two builds at a time: the machine may have 2 cores
        done = list(pool.map(run, jobs))
    total = time.perf_counter() - start
    builds: dict[str, dict[str, dict]] = {}
    for (variant, name), record in done:
        builds.setdefault(variant.name, {})[name] = record
    _report(request.config, builds, total)
    return builds


def _report(config, builds, total) -> None:
    lines = [f"same bytes: {sum(len(b) for b in builds.values())} builds in {total:.1f} s (2 at a time)"]
    for variant, files in builds.items():
        records = list(files.values())
        probe = records[0]["probe"] or {}
        on = [t for t, is_on in probe.get("cpu_dispatch", {}).items() if is_on]
        seconds = " ".join(f"{r['seconds']:5.1f}s" for r in records)
        lines.append(
            f"  {variant:21} {seconds}  numpy {probe.get('numpy')} "
            f"dispatch [{' '.join(on) or 'baseline only'}]  BLAS {blas_summary(probe)}  "
            + "  ".join(f"{(r.get('sha256') or 'FAILED')[:12]}" for r in records)
        )
    for variant in VARIANTS:
        if variant.skip_reason():
            lines.append(f"  {variant.name:21} skipped: {variant.skip_reason()}")
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():  # shown while the tests run, whatever -s says
            reporter.write_line("")
            for line in lines:
                reporter.write_line(line)
    (REPO / ".pytest_cache").mkdir(exist_ok=True)
    (REPO / ".pytest_cache" / "same_bytes.json").write_text(json.dumps({"seconds": total, "builds": builds}, indent=1, default=str))


def setting_problems(variant: Variant, probe: dict | None, native_probe: dict | None) -> list[str]:
    """What in a build's probe shows that ``variant``'s settings did not take effect (empty: they did)."""
    if not probe:
        return [f"{variant.name}: the build's process printed no probe"]
    problems = []
    dispatch = probe["cpu_dispatch"]
    if variant.numpy_level:
        off = disabled_targets(variant.numpy_level)
        if any(dispatch.get(t) for t in off):
            problems.append(f"{variant.name}: NPY_DISABLE_CPU_FEATURES={' '.join(off)} did not take effect: {dispatch}")
        kept = [t for t in dispatch if t not in off]
        if kept and not any(dispatch[t] for t in kept):  # e.g. X86_V3 at the AVX2 level: really on, not everything off
            problems.append(f"{variant.name}: none of {kept} is on: {dispatch}")
    elif dispatch != {t: bool(__cpu_features__.get(t)) for t in __cpu_dispatch__}:  # native: every target this CPU has
        problems.append(f"{variant.name}: numpy's dispatch is limited: {dispatch}")
    openblas = [b for b in probe["blas"] if b.get("internal_api") == "openblas"]
    if variant.kernel:
        native = next((b.get("architecture") for b in (native_probe or {}).get("blas", []) if b.get("internal_api") == "openblas"), None)
        got = openblas[0].get("architecture") if openblas else None
        # Some OpenBLAS builds report a kernel under another name (Prescott as "Katmai" with
        # numpy 2.4.6's): accepted when it is the one asked for or at least not the native one.
        if not got or (got.lower() != variant.kernel.lower() and got == native):
            problems.append(f"{variant.name}: OPENBLAS_CORETYPE={variant.kernel} did not take effect: OpenBLAS runs {got}, natively {native}")
    return problems


@pytest.mark.slow  # builds files under every variant (half a minute): make test, not make test-fast
@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
def test_variant_builds_and_its_setting_takes_effect(variant, same_bytes_builds):
    if variant.skip_reason():
        pytest.skip(variant.skip_reason())
    for name, record in same_bytes_builds[variant.name].items():
        assert record["returncode"] == 0, f"{variant.name}: building {name} failed:\n{record['stderr']}"
        assert not setting_problems(variant, record["probe"], same_bytes_builds["native"][name]["probe"])


def test_a_setting_that_did_not_take_effect_is_found():
    """The check above on made-up probes: a limit numpy ignored, a kernel OpenBLAS ignored."""
    native = {"cpu_dispatch": {t: bool(__cpu_features__.get(t)) for t in __cpu_dispatch__},
              "blas": [{"internal_api": "openblas", "architecture": "SkylakeX"}]}
    assert not setting_problems(Variant("native"), native, native)
    if X86 and disabled_targets("baseline") and any(native["cpu_dispatch"].values()):
        assert setting_problems(Variant("v2", numpy_level="baseline"), native, native)  # NPY_DISABLE_CPU_FEATURES ignored
        limited = {**native, "cpu_dispatch": {t: False for t in __cpu_dispatch__}}
        assert not setting_problems(Variant("v2", numpy_level="baseline"), limited, native)
        assert setting_problems(Variant("native"), limited, native)  # a limit left over from the environment
    assert setting_problems(Variant("k", kernel="Sandybridge"), native, native)  # OPENBLAS_CORETYPE ignored
    assert not setting_problems(Variant("k", kernel="Sandybridge"), {**native, "blas": [{"internal_api": "openblas", "architecture": "Sandybridge"}]}, native)
    assert setting_problems(Variant("native"), None, native)


@pytest.mark.slow  # builds files under every variant (half a minute): make test, not make test-fast
@pytest.mark.parametrize("name", FILES)
def test_one_sha256_per_file_across_variants(name, same_bytes_builds):
    _assert_one(name, same_bytes_builds, "sha256")


@pytest.mark.slow  # builds files under every variant (half a minute): make test, not make test-fast
@pytest.mark.parametrize("name", FILES)
def test_one_values_digest_per_file_across_variants(name, same_bytes_builds):
    _assert_one(name, same_bytes_builds, "values_sha256")


def _assert_one(name, builds, key) -> None:
    seen = {variant: files[name].get(key) for variant, files in builds.items() if files[name]["returncode"] == 0}
    failed = [variant for variant, files in builds.items() if files[name]["returncode"] != 0]
    assert not failed, f"{name}: the builds of {failed} failed"
    assert len(seen) >= 2, f"{name}: fewer than two variants ran"
    groups: dict[str, list[str]] = {}
    for variant, value in seen.items():
        groups.setdefault(value, []).append(variant)
    assert len(groups) == 1, f"{name}: {len(groups)} different {key}: " + "; ".join(f"{v[:12]}: {', '.join(g)}" for v, g in groups.items())


@pytest.mark.skipif(not os.environ.get("MNIST_CROSS_ENV"), reason="set MNIST_CROSS_ENV=1 (or run `make cross-check`): numpy 1 and aarch64 builds take minutes")
def test_cross_environment_values_match(tmp_path):
    """``make cross-check``'s environments (numpy 1, aarch64 under qemu) give the main one's values."""
    from benchmarks import cross_env

    status = cross_env.main(["--work", str(tmp_path), "--json", str(tmp_path / "cross_env.json")])
    report = json.loads((tmp_path / "cross_env.json").read_text())
    ran = {row["environment"] for row in report["files"]} - {"main"}
    if not ran:
        pytest.skip("no second environment here: " + "; ".join(f"{s['environment']}: {s['why']}" for s in report["skipped"]))
    assert status == 0, "other values: " + "; ".join(f"{r['environment']} {r['file']}: {r['match']}" for r in report["files"] if r["match"] in ("NO", "FAILED"))
