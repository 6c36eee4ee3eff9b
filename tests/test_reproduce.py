"""`guardrail reproduce --tiny` end to end on the real embedded model, then a rerun that skips every stage."""

import json
import os

import pytest
from typer.testing import CliRunner

from guardrail.cli import app


@pytest.mark.slow
def test_reproduce_tiny_end_to_end_and_resume(tmp_path, chat_model, shared_data, monkeypatch):
    out = tmp_path / "rep"
    runner = CliRunner()
    # The machine is free when the run starts and busy after (with this run's own work): the threads chosen
    # at the start must hold for training too, not fall to 1.
    loads = iter([(0.0, 0.0, 0.0)])
    monkeypatch.setattr(os, "getloadavg", lambda: next(loads, (99.0, 99.0, 99.0)))
    monkeypatch.delenv("GUARDRAIL_THREADS", raising=False)
    result = runner.invoke(app, ["reproduce", "--tiny", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output + repr(result.exception)
    for stage in ("data", "baseline", "warm_tune", "bench_warm", "cold_tune", "bench_cold", "guard", "probes", "report"):
        assert (out / "stages" / f"{stage}.json").is_file(), stage
    report = (out / "REPORT.md").read_text()
    assert "Error % by context" in report and "warm+guard" in report and "probes" in report.lower()
    summary = json.loads((out / "reproduce.json").read_text())
    warm = summary["stages"]["warm_tune"]
    assert warm["chosen_epoch"] in [c["epoch"] for c in warm["checkpoints"]]
    assert warm["train"]["loss_after"] < warm["train"]["loss_before"]
    assert warm["train"]["threads"] == summary["stages"]["cold_tune"]["train"]["threads"] == os.cpu_count()
    assert (out / "warm" / "adapter" / "adapter_config.json").is_file()
    assert (out / "probe_auroc_by_layer.png").is_file() and (out / "warmth_by_checkpoint.png").is_file()
    assert (out / "bench_report" / "report.md").is_file()
    # every stage that ran the chat model says how much forward work it did and how fast
    for stage in ("data", "baseline", "warm_tune", "bench_warm", "probes"):
        t = summary["stage_throughput"][stage]
        assert t["positions"] > 0 and 0 <= t["padded_share"] < 1 and t["positions_per_s"] > 0, (stage, t)
    assert "forward positions/s" in report and "matmul peak" in report
    curves = summary["stages"]["probes"]["curves"]
    assert {(c["name"], c["model"]) for c in curves} >= {("sadness", "original"), ("sadness", "warm")}
    # the guard saw every warm answer
    assert sum(summary["stages"]["guard"]["guard_actions"]["warm"].values()) == 4 * 2 * 2
    # a rerun skips every finished stage
    again = runner.invoke(app, ["reproduce", "--tiny", "--quiet", "--out", str(out)])
    assert again.exit_code == 0 and again.output.count("skipped") == 8, again.output
    # another configuration in the same folder is refused with the fix
    other = runner.invoke(app, ["reproduce", "--out", str(out), "--quiet"])
    assert other.exit_code != 0 and "another configuration" in other.output
