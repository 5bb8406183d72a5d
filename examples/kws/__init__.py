"""Keyword spotting end to end (issue 8): synthetic spoken keywords (espeak-ng), a cochlea-like
filterbank spike front end, SNN training with ``snn_deploy.nn`` and the deployment table.

Modules: ``dataset`` (synthesis), ``frontend`` (audio -> spikes), ``models`` (the networks and
their NIR export), ``train`` (training, distillation), ``evaluate`` (docs/SPEECH.md table).
See docs/SPEECH.md.
"""
