"""A run's key names its files: the record, checkpoint and lock carry the dataset's fingerprint, so a record
made on other data is not taken for this run's; a file named without the fingerprint is not a record."""

import json
from pathlib import Path

from repro.jobs.run_key import RunKey
from repro.jobs.record import is_done, read_records

COMMITTED = Path(__file__).resolve().parents[1] / "results"


def test_a_record_on_other_data_has_another_name(tmp_path):
    one = RunKey("mnist16", "0123456789abcdef", "f:dropout+tanh", "2535671a1a", 3)
    other = RunKey("mnist16", "fedcba9876543210", "f:dropout+tanh", "2535671a1a", 3)
    assert one.record_path(tmp_path) == tmp_path / "runs" / "mnist16" / "f_dropout_tanh-2535671a1a-01234567-s003.json"
    assert one.record_path(tmp_path) != other.record_path(tmp_path)
    assert one.checkpoint_path(tmp_path).name == "f_dropout_tanh-2535671a1a-01234567-s003.pt"
    assert one.lock_path(tmp_path).parent == tmp_path / "locks" / "mnist16"
    assert one.config.state_path(tmp_path, [0, 1]) != other.config.state_path(tmp_path, [0, 1])


def _old_named_copy(tmp_path: Path) -> list[Path]:
    """A few committed records under names without the dataset's fingerprint."""
    copied = []
    for ds in ("usps", "mnist16"):
        for rec in sorted((COMMITTED / "runs" / ds).glob("baseline-*.json"))[:2]:
            body = json.loads(rec.read_text())
            key = RunKey.of_record(body)
            old = tmp_path / "runs" / ds / f"baseline-{key.digest}-s{key.seed:03d}.json"
            old.parent.mkdir(parents=True, exist_ok=True)
            old.write_text(rec.read_text())
            copied.append(old)
    return copied


def test_names_without_the_fingerprint_are_not_records(tmp_path):
    old = _old_named_copy(tmp_path)
    scan = read_records(tmp_path)
    assert not scan.records and len(scan.damaged) == len(old)
    assert all("file name does not match" in why for _, why in scan.damaged)


def test_a_run_is_done_when_its_own_record_is_there(tmp_path):
    (path,) = _old_named_copy(tmp_path)[:1]
    key = RunKey.of_record(json.loads(path.read_text()))
    assert not is_done(tmp_path, key)  # a record under another name is not this run's
    key.record_path(tmp_path).parent.mkdir(parents=True, exist_ok=True)
    path.rename(key.record_path(tmp_path))
    assert is_done(tmp_path, key) and [r.key for r in read_records(tmp_path).records] == [key]
    other_data = RunKey(key.dataset, "f" * 16, key.label, key.digest, key.seed)
    assert not is_done(tmp_path, other_data)
