"""The report's parts (repro.report.sections): configurations sorted into kinds once, generated blocks refreshed
by one helper. What the sections write together is checked by test_report.py and, for the committed study byte
for byte, by test_committed_report.py; their functions' length by test_function_length.py."""

from types import SimpleNamespace

from repro.report.blocks import Block, markers, refresh_block, refreshed_documents
from repro.report.sections.kinds import classify, dataset_order

LADDER = ["baseline", "relu", "adamw"]
FAITHFUL = ["baseline", "scaled-tanh", "fc40"]
EXTRA = ["softmax-ce"]


def _group(label: str, code: str | None = None):
    """What classify reads of a group: its mode (as the ladder planned it) and its config's code."""
    mode = "factorial" if label.startswith("f:") else "guesses" if label.startswith("guess:") else (
        "leave-one-out" if label.startswith("minus:") else "cumulative")
    return SimpleNamespace(mode=mode, first={"config": {"code": code}})


def test_each_configuration_is_sorted_into_its_kind():
    kinds_of = {
        ("usps", "baseline"): {"main", "faithful"},  # a ladder rung that the faithfulness study also reads
        ("mnist16", "baseline"): {"main"},
        ("usps", "relu"): {"main"},
        ("usps", "scaled-tanh"): {"faithful"},
        ("mnist16", "scaled-tanh"): set(),  # the faithfulness study is made on usps only
        ("usps", "f:baseline"): {"factorial"},
        ("usps", "f:relu+adamw"): {"factorial"},
        ("usps", "guess:baseline+mu-0.1"): {"guesses"},
        ("usps", "my-trick"): {"code"},
        ("mnist16", "blog-3"): {"peer_steps"},
        ("usps", "softmax-ce"): {"extra"},
        ("usps", "minus:shift"): {"main"},  # a configuration of no other kind: a row of the tables by dataset
    }
    groups = {key: _group(key[1], "trick.py" if key[1] == "my-trick" else None) for key in kinds_of}
    kinds = classify(groups, LADDER, FAITHFUL, EXTRA)
    assert kinds.all is groups
    for key, expected in kinds_of.items():
        found = {name for name in ("main", "faithful", "factorial", "guesses", "code", "peer_steps", "extra")
                 if key in getattr(kinds, name)}
        assert found == expected, key
    assert list(kinds.order) == ["usps", "mnist16"]
    assert kinds.order["usps"] == ["baseline", "relu", "minus:shift"]  # ladder order, then the others sorted
    assert kinds.order["mnist16"] == ["baseline"]


def test_a_rung_with_code_on_the_ladder_stays_in_the_ladder():
    kinds = classify({("usps", "relu"): _group("relu", "relu_hook.py")}, LADDER, FAITHFUL, EXTRA)
    assert list(kinds.main) == [("usps", "relu")] and not kinds.code


def test_datasets_come_usps_first_then_by_name():
    assert dataset_order([("mnist16", "a"), ("zz", "b"), ("usps", "c"), ("mnist16", "d")]) == ["usps", "mnist16", "zz"]


def test_a_block_is_replaced_between_its_markers_and_nothing_else():
    start, end = markers("report:x")
    doc = f"head\n{start}\nold\n{end}\ntail {start.replace('x', 'y')}\n"
    assert refresh_block(doc, "report:x", "\nnew\n\n") == f"head\n{start}\nnew\n{end}\ntail {start.replace('x', 'y')}\n"
    assert refresh_block(doc, "report:y", "new") is None  # its end marker is missing
    assert refresh_block("no markers", "report:x", "new") is None


def test_documents_are_refreshed_once_each_and_left_alone_without_their_markers(tmp_path):
    a, b, missing = tmp_path / "a.md", tmp_path / "b.md", tmp_path / "missing.md"
    one, two = markers("report:one"), markers("record:two")
    a.write_text(f"{one[0]}\n1\n{one[1]}\nmiddle\n{two[0]}\n2\n{two[1]}\n")
    b.write_text("hand-written only\n")
    docs = refreshed_documents([Block(a, "report:one", "uno"), Block(b, "report:one", "uno"),
                                Block(missing, "report:one", "uno"), Block(a, "record:two", "dos")])
    assert docs == {a: f"{one[0]}\nuno\n{one[1]}\nmiddle\n{two[0]}\ndos\n{two[1]}\n"}

