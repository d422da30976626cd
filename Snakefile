# MNIST Large Scale: every published file, rebuilt from the four raw MNIST files.
#
#   snakemake --cores 8 all                     the 21 published files, checksums, reports, figures
#   snakemake --cores 2 results/<name>.h5       one file, and only what it needs
#   snakemake --cores 2 family_fashion_mnist    the 21 published names of one base data set, validated
#   snakemake --report report.html              after a run: figures, validation tables, rule graph


from snakemake.utils import min_version, validate

min_version("9.0")


include: "workflow/rules/config.smk"


# The workflow's own config.yaml, found beside this file whatever the working directory (a run
# with --directory, the smoke test of .test/); --configfile merges a user's values over it. Used
# as a module, the using workflow's config (module ... config:) takes its place.
configfile: workflow.source_path("config.yaml")


check_config(config)
validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/fetch.smk"
include: "workflow/rules/build.smk"
include: "workflow/rules/check.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/experiment.smk"
include: "workflow/rules/evaluate.smk"


onstart:
    keep_symlinked_folders()


rule all:
    default_target: True
    input:
        published_files(),
        "results/SHA256SUMS",
        "results/reference_check.tsv",
        validation_reports(),
        "results/validation/summary.html",
        figures(),


# family_<key>: the 21 published names for one base data set (family_mnist, family_fashion_mnist, ...).
for key in BASES:

    rule:
        name:
            f"family_{key}"
        input:
            family(key),
