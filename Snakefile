# MNIST Large Scale: every published file, rebuilt from the four raw MNIST files.
#
#   snakemake --cores 8 all                     the 21 published files, checksums, reports
#   snakemake --cores 2 results/<name>.h5       one file, and only what it needs


from snakemake.utils import min_version, validate

min_version("9.0")


configfile: "config.yaml"


validate(config, "workflow/schemas/config.schema.yaml")


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/build.smk"
include: "workflow/rules/check.smk"


rule all:
    default_target: True
    input:
        published_files(),
        "results/SHA256SUMS",
        validation_reports(),
