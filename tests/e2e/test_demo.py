"""``make demo``'s script from end to end: its summary must match the lab's ground truth."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ROW = re.compile(r"^(\S+)\s+" + r"\s+".join([r"(\d+)"] * 6) + r"\s+(yes|no)$")
BYTES = re.compile(r"^(distinct files the hosts needed|fetched from upstream):\s+(\d+),\s+([\d,]+) bytes$")
PREPROD = {"win10-01", "win11-02", "server2019-03", "server2022-04", "win10-05"}
FAILING_HOST = "win11-06"


def test_demo_runs_the_full_cycle_and_its_summary_matches_the_lab(tmp_path: Path) -> None:
    completed = subprocess.run(
        [REPO / "scripts" / "demo"],
        env=dict(os.environ, WUACACHE_DEMO_STATE=str(tmp_path / "demo")),
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert completed.returncode == 0, completed.stdout[-5000:] + completed.stderr[-5000:]
    summary = completed.stdout.split("== summary", 1)[1].splitlines()

    rows = {match[1]: match.groups()[1:] for line in summary if (match := ROW.match(line.strip()))}
    assert len(rows) == 10, summary
    for host, (ok, pending, missing, discarded, error, installed, reboot) in rows.items():
        # The server's OK count is what the emulated host really has installed.
        assert ok == installed, (host, rows[host])
        if host in PREPROD:
            # PREPROD takes everything, restarting as needed: nothing left to do.
            assert (pending, missing, error, discarded, reboot) == ("0", "0", "0", "0", "no"), (host, rows[host])
        else:
            assert int(discarded) > 0, (host, rows[host])
    assert rows[FAILING_HOST][4] == "1"
    assert [host for host, row in rows.items() if row[4] != "0"] == [FAILING_HOST]
    assert any(row[6] == "yes" for host, row in rows.items() if host not in PREPROD)

    figures = {match[1]: (int(match[2]), int(match[3].replace(",", ""))) for line in summary if (match := BYTES.match(line.strip()))}
    needed, fetched = figures["distinct files the hosts needed"], figures["fetched from upstream"]
    assert needed[0] > 0
    assert fetched == needed
    # Everything stopped on the way out.
    assert "lab: stopped upstream" in completed.stdout
