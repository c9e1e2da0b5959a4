"""The safety stage: triage (``triage.Triager``: rules, linked findings, a learned classifier, language) and the
texts it shows first (``messages``). See ``assistant/safety/triage.py`` for which tier wins when they disagree."""
