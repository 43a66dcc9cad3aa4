"""Everything QGIS: the plugin class, the Processing provider and its algorithms."""
