"""``freezer-ui-agent run`` and ``legacy`` are mounted from their own packages."""

import subprocess
import sys
from pathlib import Path

FIXTURES = Path(__file__).parents[1] / "legacy" / "fixtures"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "freezer_ui.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_legacy_ls_lists_upstream_generations() -> None:
    res = _cli("legacy", "ls", str(FIXTURES / "tar-gzip-singlefile"))
    assert res.returncode == 0, res.stderr
    assert "tar/legacyhost_file" in res.stdout
    assert res.stdout.count(" level ") == 2


def test_legacy_restore_of_missing_backup_fails_clearly(tmp_path: Path) -> None:
    res = _cli(
        "legacy",
        "restore",
        str(FIXTURES / "tar-gzip-singlefile"),
        "no_such_backup",
        "--target",
        str(tmp_path / "t"),
    )
    assert res.returncode == 1
    assert "no_such_backup" in res.stderr
    assert not (tmp_path / "t").exists()


def test_run_has_its_own_options() -> None:
    res = _cli("run", "--help")
    assert res.returncode == 0
    assert "--poll-interval" in res.stdout
