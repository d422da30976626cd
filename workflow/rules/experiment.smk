# The experiment the data set was made for (make experiment; not part of `all`): a CNN trained
# on one file, tested on every test-only target. Needs the optional PyTorch extra.


rule experiment:
    input:
        train=experiment_train_file(),
        tests=experiment_test_files(),
    output:
        table="results/experiment/accuracy_vs_scale.tsv",
        figure=report(
            "results/experiment/accuracy_vs_scale.png",
            caption="../report/accuracy_vs_scale.rst",
            category="Experiment",
            labels={"figure": "accuracy against test scale"},
        ),
        summary="results/experiment/summary.json",
    log:
        "logs/experiment.log",
    conda:
        "../../envs/experiment.yaml"
    threads: config["experiment"]["threads"]
    params:
        settings={
            key: value
            for key, value in config["experiment"].items()
            if key not in ("train_file", "threads")
        },
    script:
        "../scripts/experiment.py"
