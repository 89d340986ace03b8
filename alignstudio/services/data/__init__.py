"""The data stage: browse and fix labels, import, export snapshots, validate what is stored.

`service.DataService` is the stage's one door (the Data and Validate tabs and the `import`/`export`/`validate`
commands); the rules live in the modules beside it (`browser`, `importing`, `snapshots`, `checks`). This file
imports nothing, so a command reading a constant from one of them (snapshot kinds, import formats) does not
load pandas and scipy.
"""
