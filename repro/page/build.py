"""Writes the page: index.html (the template with its styles inlined), page.js (the page's code), data.js (what
the page shows: nets, digits, runs) and data-1.js, data-2.js, ... (the weights' and digits' bytes, in files
under 1 MB each), all classic scripts, into one folder. Opened from the file system, the
page makes no network request: everything it reads sits beside it and is loaded by <script src>.

Bytes do not depend on the CPU: weights and digits are carried as base64 of their little-endian float32 bytes
(exactly the checkpoints' and datasets' values); every number computed here is an integer (digit indices,
answers) from float64 forward passes; the floats of the chart are the run records' own.
"""

from __future__ import annotations

import base64
import json
from importlib import resources
from pathlib import Path
from typing import Callable

import torch

from repro.data import DataError, load_dataset
from repro.net.metrics import is_wrong, margins, rejection_for_error
from repro.net.model import H2_SCHEMES, forward, outputs
from repro.page.nets import Net, load_nets
from repro.report.records import Group

BLOB_FILE_CHARS = 900_000  # the weights' and digits' base64 is spread over files of at most this many characters
FIRST_DIGITS = 100  # the test digits the page's buttons step through (and its tests compare on)
COLLAPSED_SHARE = 0.5  # a net wrong on more of the test set than this has collapsed: its list is not carried
PARAMS = {"net1989": ("H1.weight", "H1.bias", "H2.weight", "H2.bias", "H3.weight", "H3.bias", "out.weight",
                      "out.bias"),
          "fc40": ("H.weight", "H.bias", "out.weight", "out.bias")}
SOURCES = {  # shown at the foot of the page
    "usps": "usps: the U.S. Postal Service zip-code digits of LeCun et al. (1989), as distributed with Hastie, "
            "Tibshirani and Friedman, The Elements of Statistical Learning (hastie.su.domains/ElemStatLearn); no "
            "licence is stated there: cite the book and the paper.",
    "mnist16": "mnist16: MNIST (LeCun, Cortes and Burges; yann.lecun.com/exdb/mnist; a derivative of NIST's data, "
               "copyright Y. LeCun and C. Cortes), made available under the Creative Commons Attribution-Share "
               "Alike 3.0 licence; resized here to 16x16.",
}


def f32_base64(t: torch.Tensor) -> str:
    return base64.b64encode(t.detach().to(torch.float32).contiguous().numpy().astype("<f4").tobytes()).decode()


def _values(net: Net, x: torch.Tensor) -> torch.Tensor:
    """(N, 16, 16) -> (N, 10) output values: computed in float64, then rounded to float32, the values the study's
    nets emit. In float64 the sums' order (which differs between CPUs) moves nothing that float32 keeps, so the
    answers and lists below are the same on every machine; in float32 outputs saturate to exactly 1.0 and tie,
    as in the study's records (the page rounds its float64 outputs the same way)."""
    state = {k: v.double() for k, v in net.state.items()}
    with torch.no_grad():
        return outputs(net.cfg, forward(state, x.double(), net.cfg)).float()


def _answers(values: torch.Tensor) -> list[int]:
    """(N, 10) -> per digit the top output's class, -1 where the top outputs tie (the study counts it wrong)."""
    top = values.max(dim=-1, keepdim=True).values
    ties = (values == top).sum(dim=-1) > 1
    return [-1 if t else int(a) for a, t in zip(values.argmax(dim=-1), ties)]


def _threshold_digit(values: torch.Tensor, y: torch.Tensor) -> int | None:
    """The test digit with the smallest output gap that the 1%-error rejection still accepts (the page
    computes its gap itself: the threshold), None when nothing is accepted."""
    accepted = round((1.0 - rejection_for_error(values, y)) * len(y))
    if accepted == 0:
        return None
    order = torch.argsort(margins(values), descending=True, stable=True)
    return int(order[accepted - 1])


def _net_entry(net: Net, values: torch.Tensor, y: torch.Tensor, group: Group | None) -> dict:
    wrong = torch.nonzero(is_wrong(values, y)).flatten().tolist()
    collapsed = len(wrong) > COLLAPSED_SHARE * len(y)
    rec = next((r for r in group.ok if r["seed"] == 0), None) if group else None
    cfg = net.cfg
    return {
        "dataset": net.dataset, "label": net.label, "part": net.part, "architecture": cfg.architecture,
        "hidden": cfg.hidden_activation, "output": cfg.output_activation or "softmax",
        "h2": [list(row) for row in H2_SCHEMES[cfg.h2_scheme]],
        "params": f"params:{net.name}",  # a key of PAGE_DATA.blobs (page_files)
        "wrong": None if collapsed else wrong, "n_wrong": len(wrong),
        "threshold_digit": _threshold_digit(values, y),
        "title": rec["rung_title"] if rec else net.label,
    }


def _runs(groups: dict[tuple[str, str], Group], nets: list[Net]) -> list[dict]:
    """Per net shown, every finished seed of its configuration: [seed, test error, train error, collapsed]."""
    out = []
    for net in nets:
        g = groups.get((net.dataset, net.label))
        if g is None:
            continue
        seeds = [[r["seed"], r["final"]["test_error"], r["final"]["train_error"], bool(r["collapsed"])]
                 for r in sorted(g.ok, key=lambda r: r["seed"])]
        out.append({"dataset": net.dataset, "label": net.label, "part": net.part, "seeds": seeds})
    return out


def page_data(nets: list[Net], tests: dict[str, tuple[torch.Tensor, torch.Tensor]],
              groups: dict[tuple[str, str], Group]) -> tuple[dict, dict[str, str]]:
    """(what data.js holds, the blobs: name -> base64 of float32 bytes). tests: dataset -> (x (N, 16, 16), y (N,))
    test split."""
    entries, digits, blobs = [], {}, {}
    for ds, (x, y) in tests.items():
        ds_nets = [n for n in nets if n.dataset == ds]
        values = [_values(n, x) for n in ds_nets]
        ds_entries = [_net_entry(n, v, y, groups.get((ds, n.label))) for n, v in zip(ds_nets, values)]
        carried = set(range(min(FIRST_DIGITS, len(y))))
        for e in ds_entries:
            carried |= set(e["wrong"] or ()) | ({e["threshold_digit"]} - {None})
        index = sorted(carried)
        pick = torch.tensor(index, dtype=torch.int64)
        answers = [_answers(v[pick]) for v in values]  # per net, per carried digit
        blobs[f"pixels:{ds}"] = f32_base64(x[pick])
        blobs.update({f"params:{n.name}": f32_base64(torch.cat([n.state[k].flatten()
                                                                for k in PARAMS[n.cfg.architecture]]))
                      for n in ds_nets})
        digits[ds] = {"index": index, "labels": y[pick].tolist(), "pixels": f"pixels:{ds}",
                      "answers": [list(a) for a in zip(*answers)], "source": SOURCES.get(ds, ds),
                      "first": min(FIRST_DIGITS, len(y))}
        entries += ds_entries
    return {"nets": entries, "digits": digits, "runs": _runs(groups, [n for n in nets if n.dataset in tests])}, blobs


def _asset(name: str) -> str:
    return (resources.files("repro.page") / name).read_text(encoding="utf-8")


def _json(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True)


def page_files(data: dict, blobs: dict[str, str]) -> dict[str, bytes]:
    """File name -> bytes of the page's folder: the blobs go, in order, into data-1.js, data-2.js, ..., each
    under BLOB_FILE_CHARS characters (or one blob alone), each adding its share to PAGE_DATA.blobs."""
    chunks: list[dict[str, str]] = [{}]
    for name, text in blobs.items():
        if chunks[-1] and sum(map(len, chunks[-1].values())) + len(text) > BLOB_FILE_CHARS:
            chunks.append({})
        chunks[-1][name] = text
    files = {f"data-{i}.js": f"Object.assign(window.PAGE_DATA.blobs, {_json(c)});\n".encode()
             for i, c in enumerate(chunks, 1)}
    tags = "\n".join(f'<script src="{name}"></script>' for name in ("data.js", *files, "page.js"))
    html = _asset("template.html").replace("/*STYLE*/", _asset("page.css").strip()).replace("<!--SCRIPTS-->", tags)
    return {"index.html": html.encode(), "page.js": _asset("page.js").encode(),
            "data.js": f"window.PAGE_DATA = {_json(data | {'blobs': {}})};\n".encode(), **files}


def build_page(results_dir: Path, ladder_dir: Path, groups: dict[tuple[str, str], Group], data_dir: str | None,
               warn: Callable[[str], None] = lambda m: None) -> dict[str, bytes]:
    """The page's files for the runs in `groups` whose seed-0 checkpoints are under results_dir; {} when there
    is no such net (a ladder or faithfulness rung) or no data to show."""
    nets = load_nets(results_dir, ladder_dir, groups, warn)
    tests = {}
    for ds in dict.fromkeys(n.dataset for n in nets):
        try:
            data = load_dataset(ds, data_dir, download=False)
        except DataError as e:
            warn(f"the page leaves out {ds}: data not available ({str(e).splitlines()[0]})")
            continue
        tests[ds] = (data.x_test, data.y_test)
    if not tests:  # nothing to show (each reason above was a warning)
        return {}
    return page_files(*page_data(nets, tests, groups))
