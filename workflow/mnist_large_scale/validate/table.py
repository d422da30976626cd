"""The validation summary: one row per file and split of every report, as TSV and HTML."""

from __future__ import annotations

import json

from ..writer import SPLITS

__all__ = ["SUMMARY_COLUMNS", "summary_rows", "summary_tsv", "summary_html"]


#: Columns of the summary table, in order: (key, header).
SUMMARY_COLUMNS = (
    ("file", "file"),
    ("split", "split"),
    ("images", "images"),
    ("scale", "scale"),
    ("sampled", "sampled"),
    ("ratio_median", "size ratio / s, median"),
    ("ratio_min", "min"),
    ("ratio_max", "max"),
    ("within_tolerance", "digits with size ratio / s within tolerance"),
    ("centroid_error_max", "centroid error max (px)"),
    ("mean_centroid", "mean centroid (row, col)"),
    ("mean_centroid_mnist", "predicted from MNIST centre of mass"),
    ("ks_statistic", "KS D"),
    ("ks_p", "KS p"),
    ("value_min", "value min"),
    ("value_max", "value max"),
    ("checks", "checks passed"),
)


def summary_rows(reports: list[dict]) -> list[dict]:
    """One row per file and split of validation reports, keyed as ``SUMMARY_COLUMNS``.

    Numbers stay numbers (None where the report has none); ``checks`` is
    ``'passed/total'`` over the checks named after the split.
    """
    rows = []
    for report in reports:
        for split in SPLITS:
            stats = report["summary"].get(split)
            if stats is None:
                continue
            measured = stats.get("scale") or {}
            ratio = measured.get("ratio_over_scale") or {}
            ks = stats.get("scale_distribution") or {}
            mine = [check for check in report["checks"] if check["check"].startswith(f"{split}:")]
            rows.append(
                {
                    "file": report["file"],
                    "split": split,
                    "images": sum(stats.get("labels_histogram") or []) or None,
                    "scale": measured.get("nominal"),
                    "sampled": measured.get("sampled"),
                    "ratio_median": ratio.get("median"),
                    "ratio_min": ratio.get("min"),
                    "ratio_max": ratio.get("max"),
                    "within_tolerance": f"{measured['digits_within_size_tolerance']}/{measured['sampled']}" if measured else None,
                    "centroid_error_max": (measured.get("centroid_error_px") or {}).get("max"),
                    "mean_centroid": measured.get("mean_centroid"),
                    "mean_centroid_mnist": measured.get("mean_centroid_from_mnist_centre_of_mass"),
                    "ks_statistic": ks.get("ks_statistic"),
                    "ks_p": ks.get("p_value"),
                    "value_min": stats.get("min"),
                    "value_max": stats.get("max"),
                    "checks": f"{sum(check['ok'] for check in mine)}/{len(mine)}",
                }
            )
    return rows


def _cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e-3 and value != 0 else f"{value:.4f}"
    if isinstance(value, list):
        return ", ".join(_cell(item) for item in value)
    return str(value)


def summary_tsv(rows: list[dict]) -> str:
    """The summary table as tab-separated text with a header line."""
    lines = ["\t".join(key for key, _ in SUMMARY_COLUMNS)]
    lines += ["\t".join(_cell(row[key]) for key, _ in SUMMARY_COLUMNS) for row in rows]
    return "\n".join(lines) + "\n"


def summary_html(reports: list[dict], rows: list[dict]) -> str:
    """A standalone HTML page: the summary table, then every check of every file."""
    from html import escape

    head = "".join(f"<th>{escape(title)}</th>" for _, title in SUMMARY_COLUMNS)
    body = []
    for row in rows:
        passed, total = map(int, row["checks"].split("/"))
        cells = "".join(f"<td>{escape(_cell(row[key]))}</td>" for key, _ in SUMMARY_COLUMNS)
        body.append(f'<tr class="{"ok" if passed == total else "fail"}">{cells}</tr>')
    details = []
    for report in reports:
        items = "".join(
            f'<tr class="{"ok" if check["ok"] else "fail"}"><td>{"pass" if check["ok"] else "FAIL"}</td><td>{escape(check["check"])}</td>'
            f'<td><code>{escape(json.dumps({k: v for k, v in check.items() if k not in ("check", "ok")}))}</code></td></tr>'
            for check in report["checks"]
        )
        status = "all checks pass" if report["ok"] else "CHECKS FAIL"
        details.append(f"<details><summary>{escape(report['file'])}: {status} ({len(report['checks'])})</summary><table>{items}</table></details>")
    settings = reports[0]["settings"] if reports else {}
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>MNIST Large Scale: validation summary</title>
<style>
body {{ font-family: sans-serif; font-size: 13px; margin: 1em; }}
table {{ border-collapse: collapse; margin: 0.5em 0; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
td:first-child, th:first-child {{ text-align: left; }}
tr.fail td {{ background: #fdd; }}
code {{ font-size: 11px; }}
</style></head><body>
<h2>Validation summary</h2>
<p>One row per file and split, measured on the first {escape(str(settings.get("sample_images")))} images of each split.
Size ratio: a digit's intensity-weighted radius of gyration over that of the same MNIST digit at scale 1 by the
file's recipe, divided by the digit's scale. Centroid error: distance between a digit's centroid and the frame
centre plus s times its scale-1 offset. Checked: the medians up to the scale at which the 28 x 28 image fills the
frame (4 at 112 x 112), and every digit from scale 1 up to it (except digits whose ink MNIST cut at its image's
edge); beyond, digits are cropped and the numbers are only reported. KS: Kolmogorov-Smirnov test of a range
split's scales against log-uniform. Settings: <code>{escape(json.dumps(settings))}</code>.</p>
<table><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>
<h2>Every check</h2>
{"".join(details)}
</body></html>
"""
