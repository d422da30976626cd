"""The rule environment pins the same versions as envs/requirements.txt."""

import yaml

from conftest import REPO


def pins(lines):
    return dict(line.split("==", 1) for line in lines if "==" in line and not line.startswith("#"))


def test_conda_env_pins_equal_the_requirements():
    required = pins(line.split("#")[0].strip() for line in (REPO / "envs/requirements.txt").read_text().splitlines())
    env = yaml.safe_load((REPO / "envs/mnist_large_scale.yaml").read_text())
    pip_section = next(item["pip"] for item in env["dependencies"] if isinstance(item, dict))
    conda_pins = pins(pip_section)
    assert conda_pins, "the conda env pins nothing"
    for package, version in conda_pins.items():
        assert required.get(package) == version, f"{package}: conda env pins {version}, requirements.txt {required.get(package)}"
