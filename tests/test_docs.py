"""The repository stands on its own: what it cites exists in it, and its licence and citation files agree."""

import re
import subprocess

import pytest
import yaml

from conftest import REPO

TEXT_SUFFIXES = {".py", ".md", ".rst", ".yaml", ".yml", ".toml", ".smk", ".cff", ".txt", ".sh", ""}


def tracked_text_files():
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if listed.returncode != 0:
        pytest.skip("needs a git checkout (git ls-files)")
    paths = [REPO / line for line in listed.stdout.splitlines()]
    return [path for path in paths if path.suffix in TEXT_SUFFIXES and path.is_file() and path.name != "requirements.lock"]


def test_nothing_cites_notes_that_are_not_in_the_repository():
    outside = ["SPEC" + ".md", "../" + "shared", "/work/" + "shared"]
    found = [f"{path.relative_to(REPO)}: {needle}" for path in tracked_text_files() for needle in outside if needle in path.read_text(errors="replace")]
    assert not found, "\n".join(found)


def test_every_docs_page_that_is_cited_exists():
    cited = {
        (path.relative_to(REPO), match)
        for path in tracked_text_files()
        for match in re.findall(r"\bdocs/[A-Za-z0-9_./-]+\.(?:md|svg)\b", path.read_text(errors="replace"))
    }
    assert any(page == "docs/recipe.md" for _, page in cited), "nothing cites docs/recipe.md"
    missing = [f"{source} cites {page}" for source, page in cited if not (REPO / page).is_file()]
    assert not missing, "\n".join(missing)


def test_the_recipe_page_covers_every_recipe_constant_of_the_config(config):
    page = (REPO / "docs/recipe.md").read_text()
    undocumented = [key for key in config["recipe"] if f"`{key}`" not in page and f"recipe.{key}" not in page]
    assert not undocumented, f"docs/recipe.md does not mention recipe keys {undocumented}"


def test_citation_cff_cites_the_software_with_the_papers_the_readme_cites():
    cff = yaml.safe_load((REPO / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["type"] == "software"
    for key in ("message", "title", "authors", "references"):
        assert cff[key], key
    assert cff["license"] == "MIT" and (REPO / "LICENSE").read_text().startswith("MIT License")
    readme = (REPO / "README.md").read_text()
    for reference in cff["references"]:
        assert all(author["family-names"] in readme for author in reference["authors"]), reference["title"]
        if reference["type"] == "article":
            pages = f"{reference['journal']} {reference['volume']}({reference['issue']}):{reference['start']}-{reference['end']}"
            assert pages in readme, pages
        for identifier in reference.get("identifiers", []):
            assert identifier["description"].removeprefix("arXiv:") in readme, identifier
        assert reference.get("doi", "") in readme or reference["doi"].startswith("10.1109/"), reference["doi"]


def test_the_data_licence_in_the_config_is_the_one_the_readme_states(config):
    licence = config["base_data"]["mnist"]["license"]
    readme = (REPO / "README.md").read_text()
    for fact in ("Yann LeCun and Corinna Cortes", "CC BY-SA 3.0"):
        assert fact in licence and fact in readme, fact
    assert "Zenodo record 3820247" in readme
    pyproject = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^license = "MIT"$', pyproject, re.M), "pyproject.toml states another licence than LICENSE"
