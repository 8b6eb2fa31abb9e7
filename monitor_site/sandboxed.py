"""Documents the admin shows inside its own pages in a sandboxed frame (an issue's email,
an article's rendered body): content written by people, shown to staff, that must run
nothing and reach nothing.

Such a view's response carries a Content-Security-Policy of its own instead of the
site's: `sandbox` with no exceptions (no script, no form, no plugin, an origin of its
own even if the frame's sandbox attribute were lost), nothing loaded but the images and
styles the caller names, and framing by this site's pages only (X-Frame-Options too).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from csp.constants import NONE, SELF
from csp.decorators import csp
from django.views.decorators.clickjacking import xframe_options_sameorigin


def sandboxed_document(
    *, img_src: Sequence[str], style_src: Sequence[str] = (SELF,)
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """A view decorator: the response is a sandboxed document that only this site frames."""
    policy = {
        "sandbox": True,
        "default-src": [NONE],
        "img-src": list(img_src) or [NONE],
        "style-src": list(style_src),
        "base-uri": [NONE],
        "form-action": [NONE],
        "frame-ancestors": [SELF],
    }

    def decorator(view: Callable[..., Any]) -> Callable[..., Any]:
        return xframe_options_sameorigin(csp(policy)(view))

    return decorator
