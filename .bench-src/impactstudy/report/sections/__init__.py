"""The report's sections, one module each, every one built by ``build(ctx)`` from a frozen
:class:`~impactstudy.report.context.Context` (an aim's section by ``build(ctx, aim)``).

The reading order is data: :data:`impactstudy.report.stage.SECTIONS`. A new section is a module here
plus one line there.
"""
