"""`resyncer batch`: manifest checks, shards from torchrun's and Slurm's variables, and runs
that record failures, resume and share the jobs out (tiny models, the mesh warp, short clips)."""

from __future__ import annotations

import json

import pytest

from _pipeline_media import leftovers, speech_wav, talking_clip, tiny_models
from resyncer_core.cli import main
from resyncer_core.errors import ResyncerInputError
from resyncer_core.launcher_env import Shard, process_device, shard_from_environment
from resyncer_core.pipeline import batch as batch_module
from resyncer_core.pipeline.batch import read_manifest
from resyncer_core.video import probe_video

# ------------------------------------------------------------------------------------- shards


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_every_job_belongs_to_exactly_one_shard(count):
    jobs = range(11)
    owners = {job: [index for index in range(count) if Shard(index, count).takes(job)] for job in jobs}
    assert all(len(shards) == 1 for shards in owners.values())


def _shards(environments) -> list[Shard]:
    return [shard_from_environment(environ) for environ in environments]


@pytest.mark.parametrize("count", [1, 2, 3, 4])
def test_torchrun_ranks_are_the_shards(count):
    shards = _shards({"RANK": str(rank), "WORLD_SIZE": str(count), "LOCAL_RANK": str(rank)} for rank in range(count))
    assert [(shard.index, shard.count) for shard in shards] == [(rank, count) for rank in range(count)]
    assert shards[0].source == "RANK/WORLD_SIZE"


@pytest.mark.parametrize(("first", "step"), [(0, 1), (1, 1), (3, 2)])
def test_slurm_array_positions_are_the_shards(first, step):
    count = 4
    ids = [first + position * step for position in range(count)]
    shards = _shards({"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": str(count),
                      "SLURM_ARRAY_TASK_MIN": str(first), "SLURM_ARRAY_TASK_MAX": str(ids[-1]),
                      "SLURM_ARRAY_TASK_STEP": str(step)} for task in ids)
    assert [(shard.index, shard.count) for shard in shards] == [(position, count) for position in range(count)]


def test_array_set_by_hand_needs_only_id_and_count():
    assert shard_from_environment({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_COUNT": "2"}) == \
        Shard(1, 2, "SLURM_ARRAY_TASK_ID/COUNT")


def test_array_tasks_times_processes_cover_every_shard_once():
    # Two array tasks, each a torchrun of three processes: six shards.
    shards = _shards({"SLURM_ARRAY_TASK_ID": str(task), "SLURM_ARRAY_TASK_COUNT": "2", "RANK": str(rank),
                      "WORLD_SIZE": "3"} for task in range(2) for rank in range(3))
    assert sorted(shard.index for shard in shards) == list(range(6)) and {shard.count for shard in shards} == {6}


def test_srun_tasks_are_shards_and_a_batch_script_alone_is_not():
    shards = _shards({"SLURM_PROCID": str(task), "SLURM_STEP_NUM_TASKS": "2", "SLURM_NTASKS": "2"} for task in range(2))
    assert [(shard.index, shard.count) for shard in shards] == [(0, 2), (1, 2)]
    # The batch script of a 4-task allocation, not started by srun: one process, so all the jobs.
    assert shard_from_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}) == Shard()
    # torchrun started by srun on each node: RANK already counts the nodes.
    assert shard_from_environment({"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "RANK": "5",
                                   "WORLD_SIZE": "8"}) == Shard(5, 8, "RANK/WORLD_SIZE")


def test_no_launcher_is_one_shard():
    assert shard_from_environment({}) == Shard(0, 1)


@pytest.mark.parametrize(("environ", "match"), [
    ({"RANK": "0"}, "WORLD_SIZE is not"),
    ({"RANK": "2", "WORLD_SIZE": "2"}, "not in 0..WORLD_SIZE-1"),
    ({"RANK": "one", "WORLD_SIZE": "2"}, "is not an integer"),
    ({"SLURM_ARRAY_TASK_ID": "3"}, "come together"),
    # --array=0,6,16-32: 19 ids from 0 to 32 are not evenly spaced.
    ({"SLURM_ARRAY_TASK_ID": "6", "SLURM_ARRAY_TASK_COUNT": "19", "SLURM_ARRAY_TASK_MIN": "0",
      "SLURM_ARRAY_TASK_MAX": "32"}, "evenly spaced"),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_COUNT": "2"}, "evenly spaced"),
])
def test_inconsistent_launcher_variables_are_refused(environ, match):
    with pytest.raises(ResyncerInputError, match=match):
        shard_from_environment(environ)


def test_bare_cuda_under_torchrun_is_the_local_gpu():
    assert process_device("cuda", {"LOCAL_RANK": "1"}) == "cuda:1"
    assert process_device("cuda:0", {"LOCAL_RANK": "1"}) == "cuda:0"
    assert process_device("cpu", {"LOCAL_RANK": "1"}) == "cpu"
    assert process_device("cuda", {}) == "cuda"


# ----------------------------------------------------------------------------------- manifest


def test_csv_and_jsonl_manifests_give_the_same_jobs(tmp_path):
    (tmp_path / "jobs.csv").write_text(
        "video,audio,driver,identity,style,output\n"
        "a.mp4,a.wav,,,,out/a.mp4\n"
        "a.mp4,,d.mp4,,,out/b.mp4\n"
        "a.mp4,a.wav,,face.png,,out/c.mp4\n")
    (tmp_path / "jobs.jsonl").write_text("\n".join(json.dumps(row) for row in [
        {"video": "a.mp4", "audio": "a.wav", "output": "out/a.mp4", "mode": "lipsync"},
        {"video": "a.mp4", "driver": "d.mp4", "output": "out/b.mp4"},
        {"video": "a.mp4", "audio": "a.wav", "identity": "face.png", "output": "out/c.mp4", "style": None},
    ]) + "\n\n")
    from_csv, from_jsonl = read_manifest(tmp_path / "jobs.csv"), read_manifest(tmp_path / "jobs.jsonl")
    assert from_csv == from_jsonl
    assert [job.mode for job in from_csv] == ["lipsync", "drive", "swap"]
    assert from_csv[2].inputs == {"video": tmp_path / "a.mp4", "audio": tmp_path / "a.wav",
                                  "identity": tmp_path / "face.png"}
    assert from_csv[1].output == tmp_path / "out" / "b.mp4"


@pytest.mark.parametrize(("name", "text", "match"), [
    ("jobs.csv", "video,audio,ouptut\na.mp4,a.wav,o.mp4\n", "unknown column(s) ouptut"),
    ("jobs.csv", "video,output\na.mp4,o.mp4\n", "a lipsync job needs audio"),
    ("jobs.csv", "video,audio,mode,output\na.mp4,a.wav,dub,o.mp4\n", "mode 'dub' is unknown"),
    ("jobs.csv", "video,audio,driver,mode,output\na.mp4,a.wav,d.mp4,drive,o.mp4\n", "does not use audio"),
    ("jobs.csv", "video,audio,output\na.mp4,a.wav,o.mp4\nb.mp4,b.wav,./o.mp4\n", "lines 2 and 3 both write"),
    ("jobs.csv", "video,audio,output\na.mp4,a.wav,o.avi\n", "unsupported extension"),
    ("jobs.csv", "video,audio,output\na.mp4,a.wav,o.mp4,extra\n", "more cells than the header"),
    ("jobs.csv", "video,audio,output\n", "has no jobs"),
    ("jobs.jsonl", '{"video": "a.mp4", "audio": "a.wav", "output": "o.mp4"}\n{"video": \n', "line 2 is not JSON"),
    ("jobs.jsonl", '["a.mp4", "a.wav", "o.mp4"]\n', "not a JSON object"),
    ("jobs.jsonl", '{"video": "a.mp4", "audio": 3, "output": "o.mp4"}\n', "audio must be text"),
    ("jobs.txt", "a.mp4 a.wav o.mp4\n", "must be a .csv"),
])
def test_bad_manifest_exits_2_with_one_line_before_any_work(capsys, tmp_path, monkeypatch, name, text, match):
    monkeypatch.setattr(batch_module, "load_pipeline_models", lambda *args, **kwargs: pytest.fail("models loaded"))
    manifest = tmp_path / name
    manifest.write_text(text)
    assert main(["batch", str(manifest)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and captured.err.startswith("resyncer: error: ") and match in captured.err
    assert captured.out == "" and not (tmp_path / f"{name}.summary").exists()


def test_missing_manifest(capsys, tmp_path):
    assert main(["batch", str(tmp_path / "jobs.csv")]) == 2
    assert "cannot read manifest" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------- runs


@pytest.fixture(scope="module")
def media(tmp_path_factory):
    """A models folder, a 1.2 s talking clip, a 0.8 s speech WAV and a text file posing as audio."""
    folder = tmp_path_factory.mktemp("batch_media")
    not_audio = folder / "notes.wav"
    not_audio.write_text("not a sound file")
    return {"models": tiny_models(tmp_path_factory), "clip": talking_clip(tmp_path_factory, 1.2),
            "speech": speech_wav(folder / "speech.wav", 0.8), "not_audio": not_audio}


def _write_manifest(folder, media) -> None:
    rows = [  # a lipsync, a bad input, a drive, a missing input, a swap
        {"video": str(media["clip"]), "audio": str(media["speech"]), "output": "out/lipsync.mp4"},
        {"video": str(media["clip"]), "audio": str(media["not_audio"]), "output": "out/bad_audio.mp4"},
        {"video": str(media["clip"]), "driver": str(media["clip"]), "output": "out/drive.mp4"},
        {"video": "nowhere.mp4", "audio": str(media["speech"]), "output": "out/missing.mp4"},
        {"video": str(media["clip"]), "identity": str(media["clip"]), "audio": str(media["speech"]),
         "output": "out/swap.mp4"},
    ]
    (folder / "jobs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))


def _run(folder, media, monkeypatch, environ=None) -> int:
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "SLURM_PROCID", "SLURM_STEP_NUM_TASKS", "SLURM_ARRAY_TASK_ID",
                 "SLURM_ARRAY_TASK_COUNT", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP"):
        monkeypatch.delenv(name, raising=False)
    for name, value in (environ or {}).items():
        monkeypatch.setenv(name, value)
    return main(["batch", str(folder / "jobs.jsonl"), "--models", str(media["models"]), "--renderer", "warp",
                 "--x264-preset", "ultrafast", "--batch-size", "4"])


def _summaries(folder) -> list[dict]:
    return [json.loads(line) for path in sorted((folder / "jobs.jsonl.summary").glob("*.jsonl"))
            for line in path.read_text().splitlines()]


def test_failures_are_recorded_the_rest_finish_and_a_rerun_does_only_the_unfinished(capsys, tmp_path, monkeypatch,
                                                                                    media):
    loads = []
    load = batch_module.load_pipeline_models
    monkeypatch.setattr(batch_module, "load_pipeline_models",
                        lambda *args, **kwargs: loads.append(1) or load(*args, **kwargs))
    _write_manifest(tmp_path, media)
    assert _run(tmp_path, media, monkeypatch) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "3 done, 2 failed, 0 skipped" in captured.out
    status = {record["job"]: record for record in _summaries(tmp_path)}
    assert {job: record["status"] for job, record in status.items()} == {
        1: "done", 2: "failed", 3: "done", 4: "failed", 5: "done"}
    assert "nowhere.mp4 does not exist" in status[4]["error"] and status[2]["error"].count("\n") == 0
    assert status[1]["frames"] == 20 and status[3]["frames"] == 30 and status[1]["seconds"] > 0
    assert loads == [1]  # one model load for the three jobs that ran
    assert probe_video(tmp_path / "out" / "swap.mp4").frame_count == 20
    assert leftovers(tmp_path / "out", "bad_audio.mp4") == [] and leftovers(tmp_path / "out", "missing.mp4") == []

    # Rerun: the finished jobs are skipped, the failed ones are tried again (and fail again).
    assert _run(tmp_path, media, monkeypatch) == 0
    assert "0 done, 2 failed, 3 skipped" in capsys.readouterr().out
    rerun = {record["job"]: record["status"] for record in _summaries(tmp_path)[5:]}
    assert rerun == {1: "skipped", 2: "failed", 3: "skipped", 4: "failed", 5: "skipped"}
    assert loads == [1, 1]  # the failed job with an existing input was tried with models


@pytest.mark.parametrize("launcher", ["torchrun", "slurm array"])
def test_shards_share_the_jobs_and_write_each_output_once(capsys, tmp_path, monkeypatch, media, launcher):
    _write_manifest(tmp_path, media)
    for shard in range(2):
        environ = ({"RANK": str(shard), "WORLD_SIZE": "2", "LOCAL_RANK": str(shard)} if launcher == "torchrun" else
                   {"SLURM_ARRAY_TASK_ID": str(shard + 1), "SLURM_ARRAY_TASK_COUNT": "2",
                    "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "2"})
        assert _run(tmp_path, media, monkeypatch, environ) == 0
    capsys.readouterr()
    files = sorted(path.name for path in (tmp_path / "jobs.jsonl.summary").iterdir())
    assert files == ["shard-0-of-2.jsonl", "shard-1-of-2.jsonl"]
    records = _summaries(tmp_path)
    assert sorted(record["job"] for record in records) == [1, 2, 3, 4, 5]  # each job once, by one shard
    assert {record["job"]: record["shard"] for record in records} == {1: "0/2", 2: "1/2", 3: "0/2", 4: "1/2", 5: "0/2"}
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == ["drive.mp4", "lipsync.mp4", "swap.mp4"]


def test_batch_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["batch", "--help"])
    assert exit_info.value.code == 0 and "usage: resyncer batch" in capsys.readouterr().out


def test_auto_renderer_is_chosen_for_each_job_as_the_single_commands_do(capsys, tmp_path, media):
    (tmp_path / "jobs.csv").write_text(f"video,audio,output\n{media['clip']},{media['speech']},a.mp4\n")
    assert main(["batch", str(tmp_path / "jobs.csv"), "--models", str(media["models"]), "--x264-preset", "ultrafast",
                 "--summary-dir", str(tmp_path / "summary")]) == 0
    out = capsys.readouterr().out
    # The tiny generator is a random initialisation: the job says it is drawn with the mesh warp.
    assert "job 1: generator.safetensors is a random initialisation" in out and "1 done, 0 failed" in out
    assert [path.name for path in (tmp_path / "summary").iterdir()] == ["shard-0-of-1.jsonl"]
