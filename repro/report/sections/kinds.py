"""The configurations of a report sorted into their kinds, once (`classify`): each kind has its own section, and
only the rest (the ladder's rungs and any configuration of no other kind) fills the tables by dataset."""

from __future__ import annotations

from dataclasses import dataclass

from repro.report.records import Group, label_order
from repro.report.references import FAITHFUL_DATASET, PEER_FIGURES

Groups = dict[tuple[str, str], Group]  # (dataset, label) -> the runs of that configuration

# our runs of the peers' steps from their initial weights, but the baseline's (`peer-weights`, a row of its own):
# shown beside the peers' figures (repro.report.peers), not as rows of their own
RETRAINED_PEER_STEPS = {f.retrained for f in PEER_FIGURES if f.retrained} - {"peer-weights"}


@dataclass(frozen=True)
class Kinds:
    """Every configuration (`all`), and the same sorted by kind. A faithfulness reading that is also a rung of the
    ladder (the baseline) is in both `faithful` and `main`; every other configuration is in one kind at most."""

    all: Groups
    main: Groups  # the tables by dataset: the ladder's rungs and configurations of no other kind
    order: dict[str, list[str]]  # the rows of each dataset's table (usps first), ladder rungs in ladder order
    faithful: Groups  # readings of the faithfulness study (ablations/faithful/, on its dataset) and its extras
    factorial: Groups  # a factorial's 2^n configurations (mode `factorial`; repro.report.attribution)
    guesses: Groups  # guesses on a rung (mode `guesses`, labels `guess:<rung>+<guess>`; repro.report.guesses)
    code: Groups  # rungs with their own code (Config.code; repro.rung_code) outside the ladder
    peer_steps: Groups  # the peers' steps retrained from their initial weights (repro.report.peers)
    extra: Groups  # the ladder's extra rungs (ablations/extra/, the controls among them)


def dataset_order(keys) -> list[str]:
    """The datasets of `keys` ((dataset, label) pairs), usps first, then by name."""
    return sorted({ds for ds, _ in keys}, key=lambda d: (d != "usps", d))


def _kind(key: tuple[str, str], group: Group, ladder: list[str], extra: list[str]) -> str:
    """The kind of a configuration that is not only a faithfulness reading; the first that applies."""
    label = key[1]
    if group.mode in ("factorial", "guesses"):
        return group.mode
    if group.first["config"].get("code") and label not in ladder:
        return "code"
    if label in RETRAINED_PEER_STEPS:
        return "peer_steps"
    return "extra" if label in extra else "main"


def classify(groups: Groups, ladder: list[str], faithful: list[str], extra: list[str]) -> Kinds:
    """`groups` sorted by kind, given the names of the ladder's rungs, of the faithfulness study's readings and of
    the ladder's extra rungs. A faithfulness reading's label on another dataset, when not a ladder rung, is in no
    kind: the study is made on its own dataset only."""
    kinds: dict[str, Groups] = {k: {} for k in ("main", "factorial", "guesses", "code", "peer_steps", "extra")}
    for key, group in groups.items():
        if key[1] in faithful and key[1] not in ladder:
            continue  # its rows are the faithfulness study's, not the ladder's
        kinds[_kind(key, group, ladder, extra)][key] = group
    main = kinds["main"]
    order = {ds: label_order([lb for d, lb in main if d == ds], ladder) for ds in dataset_order(main)}
    return Kinds(all=groups, order=order,
                 faithful={k: g for k, g in groups.items() if k[0] == FAITHFUL_DATASET and k[1] in faithful},
                 **kinds)
