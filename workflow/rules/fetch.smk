# Raw data: the base data set's IDX files, uncompressed and verified, in resources/.


rule fetch_raw:
    output:
        ensure("resources/{base}/{file}", sha256=raw_sha256),
    params:
        base=lambda wildcards: config["base_data"][wildcards.base],
    log:
        "logs/fetch/{base}/{file}.log",
    localrule: True
    retries: 1
    script:
        "../scripts/fetch_raw.py"
