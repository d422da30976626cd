"""A build's progress: one log line per refresh, with rate and time left."""

import logging

from mnist_large_scale.progress import LogLines, progress_bar


def test_each_refresh_is_one_line_with_rate_and_time_left(tmp_path):
    logger = logging.getLogger("test-progress")
    logger.propagate = False
    handler = logging.FileHandler(tmp_path / "build.log")
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        with progress_bar(4000, "build", logger, mininterval=0) as bar:
            for _ in range(4):
                bar.update(1000)
    finally:
        logger.removeHandler(handler)
        handler.close()
    text = (tmp_path / "build.log").read_text()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0].startswith("INFO build:   0% |") and "0/4000 img" in lines[0]
    assert lines[-1].startswith("INFO build: 100% |####################| 4000/4000 img, 00:00 elapsed, 00:00 left, ")
    assert lines[-1].endswith("img/s") and len(lines) == len(set(lines)) == 5
    assert all(" left, " in line for line in lines)


def test_log_lines_split_carriage_returns_and_drop_repeats():
    seen = []

    class Sink:
        handlers = []

        def info(self, fmt, line):
            seen.append(line)

    stream = LogLines(Sink())
    stream.write("\ra 1%  \rb 2%")
    stream.write("\rb 2%")
    stream.write("\n")
    assert seen == ["a 1%", "b 2%"]
