"""A stand-in training worker (milliseconds, no torch) for tests of the run queue and the Train tab: it speaks the
worker's protocol through the run folder, and what it does is named by the spec's `data`."""

import textwrap
import time

STAND_IN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from alignstudio.training.run_folder import RunFolder
    run = RunFolder(sys.argv[1])
    assert sys.argv[2] == "--workspace"
    mode = run.spec().data
    status = run.status()
    with open(run.path.parent / "timeline.jsonl", "a") as log:
        log.write(json.dumps({"run": run.name, "start": time.time()}) + "\\n")
    print("stand-in", mode, flush=True)
    if mode == "crash":
        sys.exit(3)
    if mode == "fail":
        run.transition("failed", expect="running", error="ValueError: bad batch", error_tail="line 1\\nline 2")
        sys.exit(1)
    if mode == "wait-cancel" and not status.get("resumes"):
        for _ in range(400):
            if run.cancel_requested():
                (run.checkpoints_dir / "checkpoint-1").mkdir(parents=True)
                (run.checkpoints_dir / "checkpoint-1" / "trainer_state.json").write_text("{}")
                run.transition("cancelled", expect="running", step=1)
                sys.exit(0)
            time.sleep(0.025)
        sys.exit(4)
    if mode == "slow":
        time.sleep(0.3)
    with open(run.metrics_path, "a") as handle:
        handle.write(json.dumps({"step": 1, "loss": 0.69}) + "\\n")
    with open(run.path.parent / "timeline.jsonl", "a") as log:
        log.write(json.dumps({"run": run.name, "end": time.time()}) + "\\n")
    run.transition("succeeded", expect="running", step=1)
""")


def wait_for(predicate, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    raise AssertionError("condition not reached in time")
