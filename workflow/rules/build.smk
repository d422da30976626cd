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
    # Measured bounds (common.smk, README "Outgrowing one machine"): what a cluster job asks for.
    resources:
        mem_mb=job_mem_mb,
        runtime=job_runtime,
    # Exactly what changes the file's bytes (common.smk); the rest comes from config.
    params:
        base_key=base_key,
        base=base_params,
        recipe=RECIPE_PARAMS,
        scale_seed=scale_seed,
        storage=storage_params,
        numerics=NUMERICS_VERSION,
    script:
        "../scripts/build_file.py"
