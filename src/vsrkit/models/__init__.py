"""Model families, one module each, registered here by one line each (``vsrkit.models.registry``).

Nothing is imported here: a family's module is imported when a model of it is looked up or built. The order is
the order of ``vsrkit models`` and of recognition by file (the first family whose rules claim a file decides).
"""

from vsrkit.models.registry import register

register("basicvsr", "vsrkit.models.basicvsr", names=("basicvsr", "iconvsr"))
register("edvr", "vsrkit.models.edvr", names=("edvr",))
register("rlsp", "vsrkit.models.rlsp", names=("rlsp",))
register("edgesr", "vsrkit.models.edgesr", names=("esr", "espcn", "fsrcnn", "bicubic"))
register("vrt", "vsrkit.models.vrt", names=("vrt",))
register("basicvsrpp", "vsrkit.models.basicvsrpp", names=("basicvsrpp",))
register("realbasicvsr", "vsrkit.models.realbasicvsr", names=("realbasicvsr",))
