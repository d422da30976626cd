# Raw data: the base data set's IDX files, uncompressed and verified, in resources/.


rule fetch_raw:
    output:
        ensure("resources/{base}/{file}", sha256=raw_sha256),
    log:
        "logs/fetch/{base}/{file}.log",
    retries: 1
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    params:
        base=lambda wildcards: config["base_data"][wildcards.base],
    script:
        "../scripts/fetch_raw.py"
