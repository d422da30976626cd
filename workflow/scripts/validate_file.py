"""Snakemake entry point: write the validation report of one file; fail when a check fails."""

import json
import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mnist_large_scale.names import parse_name
from mnist_large_scale.sources import BaseData
from mnist_large_scale.validate import ValidationSettings, raise_on_failure, validate_file

logging.basicConfig(filename=snakemake.log[0], level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
spec = parse_name(snakemake.wildcards.name)
base = BaseData.from_config(snakemake.params.base_key, snakemake.params.base)
raw_paths = {raw.name: snakemake.input[raw.name] for raw in base.files.values()}
storage = snakemake.params.storage
settings = ValidationSettings.from_config(snakemake.params.validation)
report = validate_file(snakemake.input.h5, base, raw_paths, dtype=storage["dtype"], compression=storage["compression"], settings=settings)
text = json.dumps(report, indent=2)
logging.info("report:\n%s", text)
try:
    raise_on_failure(report)
except Exception:
    logging.exception("validation failed")
    raise
report_path = Path(snakemake.output.report)
tmp = report_path.with_name(f".{report_path.name}.part")  # a kill must not leave half a report
tmp.write_text(text + "\n")
tmp.replace(report_path)
