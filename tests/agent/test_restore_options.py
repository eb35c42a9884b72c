"""Restore actions: a selection of paths, and a non-empty target under overwrite "never"."""

import os

from tests.agent.conftest import HOST, backup_job, make_tree, runs_of, schedule_of


def restore_job(repo, target, **options):
    return {
        "client_id": HOST,
        "job_schedule": {},
        "job_actions": [
            {
                "freezer_action": {
                    "action": "restore",
                    "backup_name": "data",
                    "restore_abs_path": str(target),
                    "storage": "local",
                    "container": str(repo),
                    **options,
                }
            }
        ],
    }


def backed_up(api, agent, tmp_path):
    src, repo = make_tree(tmp_path / "src", files=8), tmp_path / "repo"
    job_id = api.jobs.create(backup_job(src, repo))
    assert agent.poll() == [job_id]
    return src, repo


def files_under(root):
    return sorted(
        os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs
    )


def test_only_the_selected_paths_are_restored(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = backed_up(api, agent, tmp_path)
    target = tmp_path / "restored"
    job_id = api.jobs.create(restore_job(repo, target, paths=["d1", "d2/f2.bin"]))
    assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success"
    assert files_under(target) == ["d1/f1.bin", "d1/f5.bin", "d2/f2.bin"]
    assert (target / "d2/f2.bin").read_bytes() == (src / "d2/f2.bin").read_bytes()
    (run,) = runs_of(api, job_id)
    assert run["actions"][0]["summary"]["paths"] == ["d1", "d2/f2.bin"]


def test_paths_must_be_a_list_of_strings(api, make_agent, tmp_path):
    agent = make_agent()
    _, repo = backed_up(api, agent, tmp_path)
    target = tmp_path / "restored"
    job_id = api.jobs.create(restore_job(repo, target, paths=["d1", ""]))
    agent.poll()
    assert schedule_of(api, job_id)["result"] == "fail"
    assert not target.exists()
    (run,) = runs_of(api, job_id)
    assert any("paths must be a list" in line for line in run["log"])


def test_a_non_empty_target_is_refused_under_never_and_left_alone(api, make_agent, tmp_path):
    agent = make_agent()
    _, repo = backed_up(api, agent, tmp_path)
    target = tmp_path / "restored"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    job_id = api.jobs.create(restore_job(repo, target, overwrite="never"))
    agent.poll()
    assert schedule_of(api, job_id)["result"] == "fail"
    assert files_under(target) == ["mine.txt"]
    assert (target / "mine.txt").read_text() == "keep me"
    (run,) = runs_of(api, job_id)
    assert any("exists and is not empty" in line for line in run["log"])


def test_an_empty_existing_target_is_fine_under_never(api, make_agent, tmp_path):
    agent = make_agent()
    src, repo = backed_up(api, agent, tmp_path)
    target = tmp_path / "restored"
    target.mkdir()
    job_id = api.jobs.create(restore_job(repo, target, overwrite="never"))
    assert agent.poll() == [job_id]
    assert schedule_of(api, job_id)["result"] == "success"
    assert files_under(target) == files_under(src)
