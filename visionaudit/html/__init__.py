"""Layer 6, the HTML page: figure data read from a report, the figures, thumbnails, and the page."""
