"""The analyst page: `mmfs serve` (a local FastAPI app, JSON API + HTML) and `mmfs report --html`.

Everything here reads the store; nothing writes. Plots are drawn server-side (SVG and PNG) so that
pages need no JavaScript chart library and no asset from outside the package.
"""
