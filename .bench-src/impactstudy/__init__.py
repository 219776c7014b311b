"""impactstudy: survey waves of a longitudinal impact study to panels, models and a report."""

__version__ = "0.1.0"
