# Checks at the end: a validation report per file and the checksum manifest.


rule validate_file:
    input:
        unpack(raw_inputs),
        h5="results/{name}.h5",
    output:
        report="results/validation/{name}.json",
    log:
        "logs/validate/{name}.log",
    conda:
        "../../envs/mnist_large_scale.yaml"
    resources:
        mem_mb=500,
    params:
        base_key=base_key,
        base=base_config,
        storage=config["output"],
    script:
        "../scripts/validate_file.py"


rule sha256sums:
    input:
        h5=published_files(),
        # Sum only files that passed validation: the manifest never vouches for a damaged file.
        reports=validation_reports(),
    output:
        "results/SHA256SUMS",
    log:
        "logs/sha256sums.log",
    conda:
        "../../envs/mnist_large_scale.yaml"
    script:
        "../scripts/sha256sums.py"
