"""The baseline receiver: a bare aiohttp app answering 200 to any POST (reads the body), and to
``GET /healthz`` (the probe of bench/scale.py)."""

import sys

from aiohttp import web


async def ok(request: web.Request) -> web.Response:
    await request.read()
    return web.Response(text="ok")


app = web.Application(client_max_size=64 * 1024 * 1024)
app.router.add_post("/{tail:.*}", ok)
app.router.add_get("/healthz", ok)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
