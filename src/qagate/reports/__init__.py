"""Reports: the terminal tables and failure reports, and the static HTML dashboard."""
