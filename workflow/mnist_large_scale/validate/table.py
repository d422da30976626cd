"""The validation summary: one row per file and split of every report, as TSV and HTML."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

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


_STYLE = """
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; margin: 0.5em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
td:first-child, th:first-child { text-align: left; }
tr.fail td { background: #fdd; }
code { font-size: 11px; }
"""

_EXPLANATION = (
    "Size ratio: a digit's intensity-weighted radius of gyration over that of the same MNIST digit at scale 1 by the "
    "configured recipe, divided by the digit's scale. Centroid error: distance between a digit's centroid and the frame "
    "centre plus s times its scale-1 offset. Checked: the medians up to the scale at which the 28 x 28 image fills the "
    "frame (4 at 112 x 112), and every digit from scale 1 up to it (except digits whose ink MNIST cut at its image's "
    "edge); beyond, digits are cropped and the numbers are only reported. KS: Kolmogorov-Smirnov test of a range "
    "split's scales against log-uniform. Settings: "
)


def _element(parent: ET.Element, tag: str, text: str | None = None, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = text
    return element


def summary_html(reports: list[dict], rows: list[dict]) -> str:
    """A standalone HTML page: the summary table, then every check of every file.

    Built as an element tree (``xml.etree.ElementTree``, serialised as HTML), so
    every text is escaped by construction.
    """
    settings = reports[0]["settings"] if reports else {}
    page = ET.Element("html")
    head = _element(page, "head")
    _element(head, "meta", charset="utf-8")
    _element(head, "title", "MNIST Large Scale: validation summary")
    _element(head, "style", _STYLE)
    body = _element(page, "body")
    _element(body, "h2", "Validation summary")
    intro = _element(
        body, "p", f"One row per file and split, measured on the first {settings.get('sample_images')} images of each split. " + _EXPLANATION
    )
    _element(intro, "code", json.dumps(settings)).tail = "."
    table = _element(body, "table")
    header = _element(_element(table, "thead"), "tr")
    for _, title in SUMMARY_COLUMNS:
        _element(header, "th", title)
    rows_element = _element(table, "tbody")
    for row in rows:
        passed, total = map(int, row["checks"].split("/"))
        line = _element(rows_element, "tr", **{"class": "ok" if passed == total else "fail"})
        for key, _ in SUMMARY_COLUMNS:
            _element(line, "td", _cell(row[key]))
    _element(body, "h2", "Every check")
    for report in reports:
        details = _element(body, "details")
        status = "all checks pass" if report["ok"] else "CHECKS FAIL"
        _element(details, "summary", f"{report['file']}: {status} ({len(report['checks'])})")
        checks = _element(details, "table")
        for check in report["checks"]:
            line = _element(checks, "tr", **{"class": "ok" if check["ok"] else "fail"})
            _element(line, "td", "pass" if check["ok"] else "FAIL")
            _element(line, "td", check["check"])
            numbers = {key: value for key, value in check.items() if key not in ("check", "ok")}
            _element(_element(line, "td"), "code", json.dumps(numbers))
    return "<!DOCTYPE html>\n" + ET.tostring(page, encoding="unicode", method="html") + "\n"
