"""Which renderer the map should use in this browser: WebGL on a GPU, canvas where WebGL is emulated.

Headless browsers and machines without a GPU run WebGL in software (SwiftShader, llvmpipe), where
Bokeh's WebGL path is slower than its plain canvas: copying the WebGL canvas back costs more than
drawing. A probe on the page reads the WebGL renderer's name and remembers the answer in a cookie;
the next page of that browser builds its map with the better backend.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

import param
from panel.custom import JSComponent

log = logging.getLogger(__name__)

COOKIE = "dd_map_backend"
Backend = Literal["webgl", "canvas"]
BACKENDS: tuple[Backend, ...] = ("webgl", "canvas")


def backend_from_cookies(cookies: Mapping[str, Any] | None, default: Backend = "webgl") -> Backend:
    """The backend the probe chose for this browser on an earlier page, else `default`."""
    value = (cookies or {}).get(COOKIE)
    if isinstance(value, bytes):
        value = value.decode(errors="ignore")
    return next((backend for backend in BACKENDS if backend == value), default)


class GraphicsProbe(JSComponent):
    """Sets the cookie and reports the WebGL renderer's name."""

    renderer = param.String(default="", doc="the browser's WebGL renderer, as it names itself")
    software = param.Boolean(default=False, doc="whether that renderer is a software emulation")

    _esm = """
    export function render({ model }) {
      let renderer = "", software = true
      try {
        const gl = document.createElement("canvas").getContext("webgl")
        if (gl) {
          const info = gl.getExtension("WEBGL_debug_renderer_info")
          renderer = String(gl.getParameter(info ? info.UNMASKED_RENDERER_WEBGL : gl.RENDERER))
          software = /swiftshader|llvmpipe|softpipe|software|basic render/i.test(renderer)
        }
      } catch (error) { renderer = String(error) }
      const backend = software ? "canvas" : "webgl"
      document.cookie = `dd_map_backend=${backend}; path=/; max-age=31536000; SameSite=Lax`
      model.send_msg({ renderer, software })
      return document.createElement("span")
    }
    """

    def _handle_msg(self, data: Any) -> None:
        data = data or {}
        self.param.update(renderer=str(data.get("renderer", "")), software=bool(data.get("software")))
        log.info("browser WebGL renderer %r (software: %s)", self.renderer, self.software)
