"""Iterative alignment rounds: sample, judge, filter, train, evaluate, and go again from the new policy.

- loop.py: the round loop (`run_rounds`) and its steps;
- settings.py: what a run of rounds is asked to do (`RoundsSettings`), importable without torch;
- folder.py: the rounds folder, read by the Rounds tab, and the subprocess that runs the loop.
"""
