# One rule builds every file name of the grammar; the name is parsed in common.smk.


rule build_file:
    input:
        unpack(raw_inputs),
    output:
        ensure("results/{name}.h5", non_empty=True),
    log:
        "logs/build/{name}.log",
    conda:
        "../../envs/mnist_large_scale.yaml"
    threads: 1
    resources:
        mem_mb=build_mem_mb,
    params:
        base_key=base_key,
        base=base_config,
        recipe=config["recipe"],
        scale_seed=config["scale_seed"],
        storage=config["output"],
    script:
        "../scripts/build_file.py"
