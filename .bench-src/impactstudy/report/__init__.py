"""The report stage: per audience, ``index.html`` with figures (and council pages for the internal
audience). :mod:`.stage` reads the inputs and writes the files; each section is a module of
:mod:`.sections` built from one frozen :class:`~impactstudy.report.context.Context`; charts, findings,
tables, disclosure control, change notes and summaries are the modules beside them; ``templates/``
holds the Jinja templates and CSS.
"""
