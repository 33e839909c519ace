"""Building blocks of the reglab-report static HTML page."""
