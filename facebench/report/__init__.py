"""Tables (Markdown, CSV, LaTeX, HTML) and plots from results.json documents."""
