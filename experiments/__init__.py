"""The experiment science of nudge: design files, randomization, analysis, power, simulation.

Pure Python over plain values and pandas frames. Nothing here imports Flask or
SQLAlchemy, so evaluators can use it in a notebook and tests need no app.
"""
