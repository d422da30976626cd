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
    # The pin alone: a new mirror, timeout or local folder gives the same bytes and fetches nothing.
    params:
        pin=raw_pin,
    script:
        "../scripts/fetch_raw.py"
