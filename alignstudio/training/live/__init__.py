"""Live mode (issue 37): a LoRA policy that trains in short DPO bursts while labels arrive.

`folder` is the session folder both sides read (no torch); `engine` the policy in memory and its bursts;
`worker` the long-lived process that holds it (`python -m alignstudio.training.live.worker FOLDER`). The rules
about who may start, label, burst and roll back are the service's (`services.live`).
"""
