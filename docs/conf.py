"""Sphinx configuration for the fiks-svarut documentation site (`make docs`).

Kept plain on purpose (one file, Markdown pages, stock extensions) so that a
move to another generator later is cheap; see maintainers/docs.md.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import svarut  # noqa: E402

project = "fiks-svarut"
author = "fiks-svarut contributors"
copyright = "fiks-svarut contributors, MIT licence"
release = svarut.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx_click",
]

source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The API reference: documented as the code declares it (public names from __all__),
# in source order, signatures with their type hints.
autodoc_default_options = {"members": True, "undoc-members": True, "member-order": "bysource", "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_inherit_docstrings = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Offline at build and view time: furo bundles its fonts, scripts and styles.
html_theme = "furo"
html_title = f"fiks-svarut {release}"
html_static_path: list[str] = []
html_show_sourcelink = False
html_copy_source = False


def _escape_status_prefixes(app: object, what: str, name: str, obj: object, options: object, lines: list[str]) -> None:
    """Docstrings name status families as ``SENDT_``/``LEVERT_``; in reST a word
    ending in ``_`` is a link, so escape the underscore."""
    type_doc = type(obj).__doc__ or ""
    if what == "data" and lines and type_doc and lines[0].strip() in type_doc:
        lines[:] = []  # an imported constant without a doc comment: autodoc fell back to its type's docstring
    for i, line in enumerate(lines):
        lines[i] = re.sub(r"(?<![`\w])([A-Z][A-Z0-9]*)_(?=[\s/,.;:)]|$)", r"\1\\_", line)


def setup(app: Any) -> None:
    app.connect("autodoc-process-docstring", _escape_status_prefixes)
