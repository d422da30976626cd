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


README_MAX_LINES = 250
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")


def tracked_markdown_pages():
    """README.md and every tracked page under docs/."""
    return [path for path in tracked_text_files() if path.suffix == ".md" and (path.name == "README.md" and path.parent == REPO or path.parent == REPO / "docs")]


def outside_code(text):
    """The lines of a Markdown text outside fenced and indented code blocks."""
    lines, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced and not line.startswith("    "):
            lines.append(line)
    return lines


def anchor(heading):
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[`*_]|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path):
    return {anchor(match.group(1)) for line in outside_code(path.read_text()) if (match := HEADING.match(line))}


def test_anchor_follows_github():
    assert anchor("Compare a published file with its rebuild") == "compare-a-published-file-with-its-rebuild"
    assert anchor("Settling the recipe: `compare`") == "settling-the-recipe-compare"
    assert anchor("Other base data sets: Fashion-MNIST, KMNIST and your own") == "other-base-data-sets-fashion-mnist-kmnist-and-your-own"


def test_every_markdown_link_of_the_readme_and_the_docs_resolves():
    pages = tracked_markdown_pages()
    assert REPO / "README.md" in pages and len(pages) > 5, pages
    broken = []
    for page in pages:
        for line in outside_code(page.read_text()):
            for target in LINK.findall(line):
                if re.match(r"[a-z]+:", target):  # https:, mailto:: not followed offline
                    continue
                file, _, fragment = target.partition("#")
                linked = (page.parent / file).resolve() if file else page
                if not linked.is_file():
                    broken.append(f"{page.relative_to(REPO)}: {target} (no such file)")
                elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
                    broken.append(f"{page.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)


def test_the_readme_is_one_sitting_and_keeps_the_commands():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= README_MAX_LINES, f"README.md has {len(readme.splitlines())} lines, more than {README_MAX_LINES}"
    for command in ("make test", "make all", "snakemake --cores 8 all", "--report", "--dag", "docs/scale_ladder.png"):
        assert command in readme, command  # CI runs the README's test command, `make test`


def test_the_readme_and_the_docs_speak_of_no_session_tree_or_machine_of_their_own():
    phrases = ("this session", "this tree", "this machine", "measured here", "took here")
    found = [f"{page.relative_to(REPO)}: {phrase}" for page in tracked_markdown_pages() for phrase in phrases if phrase in page.read_text().lower()]
    assert not found, "\n".join(found)


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


def benchmark_records():
    """Every record of benchmarks/*.json: the file itself, or each entry of a file of named records."""
    import json

    for path in sorted((REPO / "benchmarks").glob("*.json")):
        data = json.loads(path.read_text())
        if "command" in data:
            yield path.name, data
        elif isinstance(data.get("runs"), list):  # one record per run
            yield from ((f"{path.name}: run {number}", record) for number, record in enumerate(data["runs"], 1))
        else:  # named records (storage variants, test targets); null: not measured yet
            yield from ((f"{path.name}: {name}", record) for name, record in data.items() if record is not None)


def test_every_benchmark_record_names_its_machine_date_and_command():
    records = list(benchmark_records())
    assert len(records) >= 5
    for name, record in records:
        assert isinstance(record, dict), name
        assert {"cpu", "cores", "python"} <= set(record.get("machine", {})), f"{name}: machine"
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", record.get("date", "")), f"{name}: date"
        assert record.get("command", "").split()[0] in ("python", "make", "nice"), f"{name}: command"
