# Figures for the report (`snakemake --report report.html`): what the files show.


rule montage:
    input:
        h5="results/{name}.h5",
    output:
        png=report(
            "results/figures/{name}.montage.png",
            caption="../report/montage.rst",
            category="Figures",
            subcategory="Montages",
            labels={"figure": "montage", "file": "{name}"},
        ),
    log:
        "logs/figures/{name}.montage.log",
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    params:
        images=config["figures"]["montage_images"],
        classes=lambda wildcards: list(base_of(target_name(wildcards)).classes),
    script:
        "../scripts/montage.py"


rule scale_ladder:
    input:
        unpack(ladder_inputs),
    output:
        png=report(
            "results/figures/scale_ladder.png",
            caption="../report/scale_ladder.rst",
            category="Figures",
            subcategory="Scales",
            labels={"figure": "17 test scales", "file": "all"},
        ),
    log:
        "logs/figures/scale_ladder.log",
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    params:
        base_key=lambda wildcards: ladder_base().key,
        base=lambda wildcards: base_pins(ladder_base().key),
        classes=lambda wildcards: list(ladder_base().classes),
        recipe=RECIPE_PARAMS,
        numerics=NUMERICS_VERSION,
    script:
        "../scripts/scale_ladder.py"


rule size_vs_scale:
    input:
        validation_reports(),
    output:
        png=report(
            "results/figures/size_vs_scale.png",
            caption="../report/size_vs_scale.rst",
            category="Figures",
            subcategory="Scales",
            labels={"figure": "size against scale", "file": "all"},
        ),
    log:
        "logs/figures/size_vs_scale.log",
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    params:
        tolerance=config["validation"]["size_tolerance"],
    script:
        "../scripts/size_vs_scale.py"


rule scale_histogram:
    input:
        h5="results/{name}.h5",
    output:
        png=report(
            "results/figures/{name}.scales.png",
            caption="../report/scale_histogram.rst",
            category="Figures",
            subcategory="Scales",
            labels={"figure": "per-sample scales", "file": "{name}"},
        ),
    log:
        "logs/figures/{name}.scales.log",
    localrule: True
    conda:
        "../../envs/mnist_large_scale.yaml"
    script:
        "../scripts/scale_histogram.py"
