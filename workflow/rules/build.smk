# One rule builds every file name of the grammar; the name is parsed in common.smk.


rule build_file:
    input:
        unpack(raw_inputs),
    output:
        ensure("results/{name}.h5", non_empty=True),
    params:
        base_key=base_key,
        base=base_config,
        recipe=config["recipe"],
        scale_seed=config["scale_seed"],
        storage=config["output"],
    log:
        "logs/build/{name}.log",
    threads: 2
    resources:
        mem_mb=1500,
    script:
        "../scripts/build_file.py"
