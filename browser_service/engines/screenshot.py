"""Screenshots within ``BROWSER_SERVICE_MAX_SCREENSHOT_BYTES``: clipped to fit rather than refused.

A screenshot is the viewport (1280×900 CSS pixels at scale 1), so its pixel count is fixed; its
PNG size is not — a page of photographs, video stills or canvas noise makes a multi-megabyte PNG,
a third larger again in base64, which an agent's model may reject (model APIs cap images at a few
MB) and which every client must hold in memory. Over the limit, the screenshot is taken again of
the top part of the viewport, sized from the first PNG (its size is roughly proportional to the
area), and the answer says so in ``warnings``: the top of a page is the part an agent most wants,
and failing the whole fetch would throw away the text it asked for along with the picture. Only a
page whose top :data:`MIN_HEIGHT` pixels alone are over the limit (a tiny limit) is ``too_large``.
"""

from __future__ import annotations

from typing import Any

from playwright.async_api import Page

from browser_service.deadline import Deadline
from browser_service.errors import TooLarge

#: The smallest clip worth answering with; below it the screenshot is refused (too_large).
MIN_HEIGHT = 64
#: Clipped retries at most (each one sized from the last PNG).
MAX_RETRIES = 3
#: Aim this much under the limit, as PNG size is only roughly proportional to the area.
HEADROOM = 0.9


async def capture(page: Page, deadline: Deadline, max_bytes: int) -> tuple[bytes, str | None]:
    """The viewport's PNG, or its top part when the whole is over ``max_bytes``: (png, warning)."""
    shot = await _shot(page, deadline)
    if len(shot) <= max_bytes:
        return shot, None
    whole = len(shot)
    viewport = page.viewport_size or {"width": 1280, "height": 900}
    width, full_height = viewport["width"], viewport["height"]
    height = full_height
    for _ in range(MAX_RETRIES):
        height = min(height - 1, int(height * max_bytes / len(shot) * HEADROOM))
        if height < MIN_HEIGHT:
            break
        shot = await _shot(page, deadline, {"x": 0, "y": 0, "width": width, "height": height})
        if len(shot) <= max_bytes:
            return shot, (
                f"the screenshot was clipped to the top {height} of {full_height} pixels: the whole viewport "
                f"was {whole:,} bytes as PNG, over the limit of {max_bytes:,} (BROWSER_SERVICE_MAX_SCREENSHOT_BYTES)"
            )
    raise TooLarge(
        f"The screenshot is larger than the limit of {max_bytes:,} bytes (BROWSER_SERVICE_MAX_SCREENSHOT_BYTES), "
        f"even clipped to the top of the page ({whole:,} bytes for the whole viewport). Fetch without the "
        "screenshot format; an operator can raise the limit.",
        phase="screenshot",
    )


async def _shot(page: Page, deadline: Deadline, clip: Any = None) -> bytes:
    if clip is None:
        return await deadline.run(page.screenshot(type="png", timeout=0), "screenshot")
    return await deadline.run(page.screenshot(type="png", timeout=0, clip=clip), "screenshot")
