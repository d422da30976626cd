# Checks at the end: a validation report and a checksum per file, their summary, the manifest.


rule validate_file:
    input:
        unpack(raw_inputs),
        h5="results/{name}.h5",
    output:
        report=report(
            "results/validation/{name}.json",
            caption="../report/validation_file.rst",
            category="Validation",
            subcategory="Per-file reports (JSON)",
            labels={"file": "{name}"},
        ),
        # The file's line of SHA256SUMS: hashed while it is checked, written only if it passed.
        checksum="results/checksums/{name}.h5.sha256",
    log:
        "logs/validate/{name}.log",
    conda:
        "../../envs/mnist_large_scale.yaml"
    threads: 1
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    # What the file must say about itself, and how it is measured: the report changes with each.
    params:
        base_key=base_key,
        base=base_params,
        recipe=RECIPE_PARAMS,
        scale_seed=scale_seed,
        storage=storage_params,
        numerics=NUMERICS_VERSION,
        validation=config["validation"],
    script:
        "../scripts/validate_file.py"


rule validation_summary:
    input:
        validation_reports(),
    output:
        tsv="results/validation/summary.tsv",
        html=report(
            "results/validation/summary.html",
            caption="../report/validation_summary.rst",
            category="Validation",
            subcategory="Summary",
            labels={"table": "all files"},
        ),
    log:
        "logs/validation_summary.log",
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    script:
        "../scripts/validation_summary.py"


rule sha256sums:
    input:
        checksum_files(),
    output:
        "results/SHA256SUMS",
    log:
        "logs/sha256sums.log",
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    script:
        "../scripts/sha256sums.py"


rule reference_check:
    input:
        h5=published_files(),
        checksums=checksum_files(),
        table=REFERENCE_TABLE,
    output:
        "results/reference_check.tsv",
    log:
        "logs/reference_check.log",
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    params:
        configuration=reference_configuration(config),
    script:
        "../scripts/reference_check.py"
