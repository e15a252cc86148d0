"""Running a diagnosis: what the Python API and every command share once the target is built.

`settings` checks what was asked (mode, backend, device, probes, output folder) and makes the
benchmark's settings; `diagnose` runs the probes through `run.DiagnosisRun`, in the order that
keeps each measurement honest; `writer` keeps `<out>/diagnosis.json` up to date as each probe
finishes; `interrupt` lets Ctrl-C stop the run at the next probe.
"""
