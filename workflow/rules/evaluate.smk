# A model tested at each test scale (snakemake evaluate; not part of `all`; docs/evaluate.md).
# Needs the optional PyTorch extra and config evaluate.model.


rule evaluate:
    input:
        unpack(evaluate_inputs),
    output:
        table="results/evaluate/accuracy_vs_scale.tsv",
        report="results/evaluate/evaluation.json",
        figure=report(
            "results/evaluate/accuracy_vs_scale.png",
            caption="../report/evaluation.rst",
            category="Evaluation",
            labels={"figure": "a model's accuracy against test scale"},
        ),
    log:
        "logs/evaluate.log",
    conda:
        "../../envs/experiment.yaml"
    threads: config["evaluate"]["workers"]
    params:
        model=config["evaluate"]["model"],
        train_scale=config["evaluate"]["train_scale"],
        input=config["evaluate"]["input"],
        device=config["evaluate"]["device"],
        batch_size=config["evaluate"]["batch_size"],
        test_images=config["evaluate"]["test_images"],
    script:
        "../scripts/evaluate.py"
