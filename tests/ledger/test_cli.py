"""`time2bet ledger verify` and `time2bet ledger anchor` (click's CliRunner, settings from the environment)."""

from __future__ import annotations

import json

from click.testing import CliRunner

from time2bet.cli.main import main

from .conftest import make_record, write_ledger


def _run(tmp_path, *args):
    env = {"TIME2BET_HOME": str(tmp_path), "TIME2BET_LEDGER_DIR": str(tmp_path / "ledger")}
    return CliRunner().invoke(main, ["ledger", *args], env=env)


def test_verify_and_anchor(tmp_path):
    ledger_dir = tmp_path / "ledger"
    write_ledger(ledger_dir, "w1", [make_record(i, rows=2) for i in range(6)])
    anchors = tmp_path / "anchors.json"
    result = _run(tmp_path, "anchor", "--out", str(anchors))
    assert result.exit_code == 0, result.output
    assert "anchored 1 chain(s), 6 records" in result.output
    assert json.loads(anchors.read_text())["heads"]["w1"]["seq"] == 5

    result = _run(tmp_path, "verify", "--anchors", str(anchors))
    assert result.exit_code == 0, result.output
    assert "1 chains, 6 records, 12 predictions, all intact" in result.output

    [path] = ledger_dir.glob("*/w1.jsonl")
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]))                       # the newest record removed
    assert _run(tmp_path, "verify").exit_code == 0               # invisible without the anchors
    result = _run(tmp_path, "verify", "--anchors", str(anchors))
    assert result.exit_code == 1
    assert "truncated" in result.output and "anchored at seq 5" in result.output and "1 problem(s)" in result.output
    inline = json.dumps({"w1": {"seq": 5, "hash": json.loads(anchors.read_text())["heads"]["w1"]["hash"]}})
    assert _run(tmp_path, "verify", "--anchors", inline).exit_code == 1   # anchors as a JSON mapping

    result = _run(tmp_path, "anchor", "--out", str(anchors))     # re-anchoring would launder the removal: refused
    assert result.exit_code == 1 and "not anchored" in result.output
    assert json.loads(anchors.read_text())["heads"]["w1"]["seq"] == 5


def test_verify_lists_an_edit_and_anchor_refuses_a_path_in_the_ledger(tmp_path):
    ledger_dir = tmp_path / "ledger"
    write_ledger(ledger_dir, "w1")
    [path] = ledger_dir.glob("*/w1.jsonl")
    path.write_bytes(path.read_bytes().replace(b'"p_draw":[0.3]', b'"p_draw":[0.31]', 1))
    result = _run(tmp_path, "verify")
    assert result.exit_code == 1 and "edited" in result.output and "w1.jsonl:1" in result.output
    result = _run(tmp_path, "anchor", "--out", str(ledger_dir / "anchors.json"))
    assert result.exit_code == 2 and "inside the ledger directory" in result.output


def test_verify_of_an_empty_ledger_and_a_bad_anchors_argument(tmp_path):
    result = _run(tmp_path, "verify")
    assert result.exit_code == 0 and "0 chains, 0 records, 0 predictions, all intact" in result.output
    result = _run(tmp_path, "verify", "--anchors", str(tmp_path / "missing.json"))
    assert result.exit_code == 2 and "not an anchors file" in result.output
