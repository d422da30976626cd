import math

import pytest

from mnist_large_scale.names import (
    FileSpec,
    InvalidName,
    ScaleSpec,
    check_counts,
    format_name,
    parse_name,
    scale_from_tag,
    scale_tag,
)

PUBLISHED_TEST_TAGS = "0p500 0p595 0p707 0p841 1p000 1p189 1p414 1p682 2p000 2p378 2p828 3p364 4p000 4p757 5p657 6p727 8p000".split()
MNIST = {"train": 50000, "val": 10000, "test": 10000}


def test_published_tags_are_the_quarter_octaves_and_stand_for_the_powers():
    for k, tag in zip(range(-4, 13), PUBLISHED_TEST_TAGS, strict=True):
        assert scale_tag(2 ** (k / 4)) == tag
        # sqrt(sqrt(2**k)): machine-independent, within an ulp of the power
        assert scale_from_tag(tag) == math.sqrt(math.sqrt(2.0**k))
        assert abs(scale_from_tag(tag) - 2 ** (k / 4)) <= math.ulp(2 ** (k / 4))


def test_quarter_octaves_that_are_powers_of_two_are_exact():
    assert [scale_from_tag(tag) for tag in ("0p500", "1p000", "2p000", "4p000", "8p000")] == [0.5, 1.0, 2.0, 4.0, 8.0]


def test_other_tags_stand_for_their_own_value():
    assert scale_from_tag("3p000") == 3.0
    assert scale_from_tag("1p190") == 1.19


@pytest.mark.parametrize(
    "name",
    [
        "mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr1p000_scte1p000.h5",
        "mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr1p000-4p000_scte1p000-4p000.h5",
        "mnist_large_scale_te10000_outsize112-112_scte0p595.h5",
        "mnist_large_scale_tr500_vl100_te200_outsize64-64_sctr2p000_scte3p000.h5",
        "mnist_large_scale_te300_outsize33-57_scte1p000-2p000.h5",
        "fashion_mnist_large_scale_te5_outsize112-112_scte2p000.h5",
    ],
)
def test_parse_then_format_gives_the_name_back(name):
    assert format_name(parse_name(name)) == name


def test_parse_reads_every_field():
    spec = parse_name("results/mnist_large_scale_tr500_vl100_te200_outsize64-48_sctr1p000-4p000_scte3p000.h5")
    assert spec == FileSpec("mnist_large_scale", 500, 100, 200, (64, 48), ScaleSpec("1p000", "4p000"), ScaleSpec("3p000", "3p000"))
    assert spec.train_scale.is_range and (spec.train_scale.low, spec.train_scale.high) == (1.0, 4.0)
    assert not spec.test_only
    assert [spec.split_count(s) for s in ("train", "val", "test")] == [500, 100, 200]


def test_test_only_files_hold_one_train_and_one_val_sample_at_the_test_scale():
    spec = parse_name("mnist_large_scale_te10000_outsize112-112_scte2p828.h5")
    assert spec.test_only
    assert [spec.split_count(s) for s in ("train", "val", "test")] == [1, 1, 10000]
    assert spec.split_scale("train") == spec.split_scale("test") == ScaleSpec("2p828", "2p828")


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("foo.h5", "fits no pattern"),
        ("mnist_large_scale_te10000_outsize112_scte1p000.h5", "fits no pattern"),
        ("mnist_large_scale_tr0_vl10_te10_outsize112-112_sctr1p000_scte1p000.h5", "training count (tr) is 0"),
        ("mnist_large_scale_te0_outsize112-112_scte1p000.h5", "test count (te) is 0"),
        ("mnist_large_scale_te010_outsize112-112_scte1p000.h5", "leading zero"),
        ("mnist_large_scale_te10_outsize0-112_scte1p000.h5", "output height (outsize) is 0"),
        ("mnist_large_scale_te10_outsize112-0_scte1p000.h5", "output width (outsize) is 0"),
        ("mnist_large_scale_te10_outsize112-112_scte0p000.h5", "scale of zero"),
        ("mnist_large_scale_te10_outsize112-112_scte1p0.h5", "malformed"),
        ("mnist_large_scale_te10_outsize112-112_scte2.h5", "malformed"),
        ("mnist_large_scale_te10_outsize112-112_scte4p000-1p000.h5", "smaller to a larger"),
        ("mnist_large_scale_te10_outsize112-112_scte2p000-2p000.h5", "is a single scale"),

    ],
)
def test_bad_names_fail_with_a_message_naming_the_problem(name, message):
    with pytest.raises(InvalidName, match=message.replace("(", r"\(").replace(")", r"\)")) as caught:
        parse_name(name)
    assert name in str(caught.value) or "fits no pattern" in str(caught.value)


def test_unknown_prefix_is_refused_when_prefixes_are_given():
    with pytest.raises(InvalidName, match="known prefixes: mnist_large_scale"):
        parse_name("emnist_large_scale_te10_outsize112-112_scte1p000.h5", prefixes=("mnist_large_scale",))


def test_counts_larger_than_mnist_are_refused():
    check_counts(parse_name("mnist_large_scale_tr50000_vl10000_te10000_outsize112-112_sctr1p000_scte1p000.h5"), MNIST)
    for name, split in [
        ("mnist_large_scale_tr50001_vl10_te10_outsize112-112_sctr1p000_scte1p000.h5", "train"),
        ("mnist_large_scale_tr5_vl10001_te10_outsize112-112_sctr1p000_scte1p000.h5", "val"),
        ("mnist_large_scale_te10001_outsize112-112_scte1p000.h5", "test"),
    ]:
        with pytest.raises(InvalidName, match=f"{split} images asked for, but the base data set has only"):
            check_counts(parse_name(name), MNIST)
