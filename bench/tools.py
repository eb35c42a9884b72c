"""One runner per tool: how to init, back up and restore, as argv lists run in fresh subprocesses.

The harness (bench/run.py) times each command and reads its peak RSS from os.wait4; runners only
say what to run.  Every tool keeps its own caches under its work dir, so a run never reuses a
previous run's state (restic cache, borg files cache, our files cache all start empty).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field

HOST = "benchhost"
NAME = "bench"
MAIN = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FREEZER_VERSION = "19.0.0"


@dataclass
class Cmd:
    argv: list[str]
    cwd: str
    env: dict = field(default_factory=dict)


def ensure_apt(pkgs: dict[str, str], log=print) -> None:
    """Install Debian packages whose binary is missing (the bench must work on a fresh machine)."""
    missing = [pkg for binary, pkg in pkgs.items() if not shutil.which(binary)]
    if not missing:
        return
    log(f"  apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", *missing], check=True, env=env)


class Tool:
    name = "?"
    label = "?"

    def __init__(self, work: str, source: str):
        self.work = os.path.join(work, self.name)
        self.source = source
        self.repo = os.path.join(self.work, "repo")
        self.notes: list[str] = []

    def prepare(self, log=print) -> None:
        """Install/verify the tool and create an empty repository (not timed)."""
        if os.path.exists(self.work):
            shutil.rmtree(self.work)
        os.makedirs(self.work)

    def version(self) -> str:
        return "?"

    def backup(self, step: str) -> Cmd:
        raise NotImplementedError

    def restore(self, target: str) -> Cmd:
        raise NotImplementedError

    def parse(self, step: str, stdout: str) -> dict:
        """Tool-reported facts from a step's stdout (optional)."""
        return {}

    def finish(self) -> None:
        pass


class Restic(Tool):
    name = "restic"
    label = "restic"

    def env(self) -> dict:
        # restic 0.14 always encrypts (no --insecure-no-password before 0.17): noted in the report.
        return {
            "RESTIC_REPOSITORY": self.repo,
            "RESTIC_PASSWORD": "bench",
            "RESTIC_CACHE_DIR": os.path.join(self.work, "cache"),
        }

    def prepare(self, log=print) -> None:
        super().prepare(log)
        ensure_apt({"restic": "restic"}, log)
        subprocess.run(["restic", "init", "-q"], env=os.environ | self.env(), check=True)

    def version(self) -> str:
        return subprocess.run(["restic", "version"], capture_output=True, text=True).stdout.split()[
            1
        ]

    def backup(self, step: str) -> Cmd:
        # "." from inside the source: the snapshot holds the tree's contents at its top.
        return Cmd(
            ["restic", "backup", "--json", "-q", "--host", HOST, "."], self.source, self.env()
        )

    def restore(self, target: str) -> Cmd:
        return Cmd(["restic", "restore", "latest", "--target", target, "-q"], self.work, self.env())

    def parse(self, step: str, stdout: str) -> dict:
        for line in reversed(stdout.splitlines()):
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if doc.get("message_type") == "summary":
                return {
                    "files": doc.get("total_files_processed"),
                    "new_bytes": doc.get("data_added"),
                }
        return {}


class Borg(Tool):
    name = "borg"
    label = "borg (zstd,3)"

    def env(self) -> dict:
        return {
            "BORG_BASE_DIR": os.path.join(self.work, "base"),  # its files cache + chunk cache
            "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes",
            "BORG_RELOCATED_REPO_ACCESS_IS_OK": "yes",
        }

    def prepare(self, log=print) -> None:
        super().prepare(log)
        ensure_apt({"borg": "borgbackup"}, log)
        self.n = 0
        # Unencrypted, like our run and freezer's: encryption is measured separately for ours.
        subprocess.run(
            ["borg", "init", "-e", "none", self.repo], env=os.environ | self.env(), check=True
        )

    def version(self) -> str:
        return subprocess.run(["borg", "--version"], capture_output=True, text=True).stdout.split()[
            1
        ]

    def backup(self, step: str) -> Cmd:
        self.n += 1
        self.last = f"{NAME}-{self.n}"
        argv = ["borg", "create", "--compression", "zstd,3", f"{self.repo}::{self.last}", "."]
        return Cmd(argv, self.source, self.env())

    def restore(self, target: str) -> Cmd:
        return Cmd(["borg", "extract", f"{self.repo}::{self.last}"], target, self.env())


class Freezer(Tool):
    """Upstream freezer-agent 19.0.0 (tar engine, gzip, local storage) in its own venv."""

    name = "freezer"
    label = f"freezer {FREEZER_VERSION} (tar, gzip)"
    keystone: subprocess.Popen | None = None

    def __init__(self, work: str, source: str):
        super().__init__(work, source)
        # The venv survives runs (installing takes ~1 min); the repository does not.
        self.venv = os.path.join(os.path.dirname(work.rstrip("/")), "freezer-venv")
        self.agent = os.path.join(self.venv, "bin", "freezer-agent")

    def prepare(self, log=print) -> None:
        super().prepare(log)
        if not os.path.exists(self.agent):
            log(f"  creating {self.venv} with freezer=={FREEZER_VERSION}")
            subprocess.run([sys.executable, "-m", "venv", self.venv], check=True)
            subprocess.run(
                [
                    os.path.join(self.venv, "bin", "pip"),
                    "install",
                    "-q",
                    f"freezer=={FREEZER_VERSION}",
                ],
                check=True,
            )
        # The stub Keystone runs beside the agent for the whole run (see bench/fake_keystone.py).
        self.keystone = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_keystone", "0"],
            cwd=MAIN,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.keystone.stdout.readline().split()
        if not line or line[0] != "ready":
            raise RuntimeError("fake keystone did not start")
        self.port = int(line[1])

    def version(self) -> str:
        return FREEZER_VERSION

    def env(self) -> dict:
        return {
            "OS_AUTH_URL": f"http://127.0.0.1:{self.port}/v3",
            "OS_USERNAME": "bench",
            "OS_PASSWORD": "bench",
            "OS_PROJECT_NAME": "bench",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
            "OS_REGION_NAME": "RegionOne",
            "PYTHONWARNINGS": "ignore",  # eventlet's deprecation banner on every start
        }

    def _common(self) -> list[str]:
        return [
            self.agent,
            "--log-file",
            os.path.join(self.work, "freezer.log"),
            "--mode",
            "fs",
            "--engine",
            "tar",
            "--storage",
            "local",
            "--container",
            self.repo,
            "--backup-name",
            NAME,
            "--hostname",
            HOST,
        ]

    def backup(self, step: str) -> Cmd:
        argv = self._common() + [
            "--action",
            "backup",
            "--path-to-backup",
            self.source,
            "--incremental",
            "--max-level",
            "10",
            "--compression",
            "gzip",
        ]
        return Cmd(argv, self.work, self.env())

    def restore(self, target: str) -> Cmd:
        return Cmd(
            self._common() + ["--action", "restore", "--restore-abs-path", target],
            self.work,
            self.env(),
        )

    def finish(self) -> None:
        if self.keystone:
            self.keystone.terminate()
            self.keystone.wait()


class Ours(Tool):
    """freezer-ui-agent (docs/architecture.md §7), tar engine, local repository."""

    name = "ours"
    label = "freezer-ui"
    encryption = "none"

    # Set by the harness: a directory holding a pinned copy of the freezer_ui package (git archive
    # of one commit), so a run measures one commit even while the engine is being edited.
    pinned_src: str | None = None

    def __init__(self, work: str, source: str):
        super().__init__(work, source)
        # Same as the freezer-ui-agent entry point, but importable from the pinned copy.
        self.cli_argv = [
            sys.executable,
            "-c",
            "import sys; from freezer_ui.cli.main import main; sys.exit(main())",
        ]
        self.cli = self.cli_argv[0]

    def env(self) -> dict:
        env = {"FREEZER_UI_PASSPHRASE": "bench-passphrase"}
        if self.encryption == "none":
            env["FREEZER_UI_PASSPHRASE"] = ""  # unencrypted run: no passphrase at all
        if self.pinned_src:
            env["PYTHONPATH"] = self.pinned_src  # ahead of the editable install's finder
        return env

    def prepare(self, log=print) -> None:
        super().prepare(log)
        argv = [*self.cli_argv, "init", "--repo", self.repo, "--encryption", self.encryption]
        subprocess.run(argv, env=os.environ | self.env(), check=True, capture_output=True)

    def version(self) -> str:
        try:
            import freezer_ui

            return getattr(freezer_ui, "__version__", "dev")
        except ImportError:
            return "?"

    def backup(self, step: str) -> Cmd:
        argv = [
            *self.cli_argv,
            "backup",
            "--repo",
            self.repo,
            "--engine",
            "tar",
            "--source",
            self.source,
            "--backup-name",
            NAME,
            "--hostname",
            HOST,
            "--cache-dir",
            os.path.join(self.work, "cache"),  # fresh files cache per run, like the peers'
            "--json",
            "--no-progress",
        ]
        return Cmd(argv, self.work, self.env())

    def restore(self, target: str) -> Cmd:
        argv = [
            *self.cli_argv,
            "restore",
            "--repo",
            self.repo,
            "--latest",
            "--target",
            target,
            "--no-progress",
        ]
        return Cmd(argv, self.work, self.env())

    def parse(self, step: str, stdout: str) -> dict:
        # --json prints one (pretty-printed) JSON document: files, bytes_*, duration, generation_id.
        try:
            doc = json.loads(stdout)
        except ValueError:
            return {}
        if not isinstance(doc, dict):
            return {}
        out = {k: v for k, v in doc.items() if not isinstance(v, (list, dict))}
        if "bytes_new" in out:
            out["new_bytes"] = out["bytes_new"]
        return out


class OursEncrypted(Ours):
    """Same, with aes-256-gcm: only the first backup, to show the cost of encryption."""

    name = "ours-enc"
    label = "freezer-ui (aes-256-gcm)"
    encryption = "aes-256-gcm"


TOOLS = {t.name: t for t in (Ours, OursEncrypted, Restic, Borg, Freezer)}
PEERS = ("restic", "borg", "freezer")
