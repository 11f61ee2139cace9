"""One declaration per family (``FAMILY``), listed in :data:`structlin._registry.FAMILY_NAMES`."""
