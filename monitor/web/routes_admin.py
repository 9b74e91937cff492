"""Admin pages: source health (last success and error, failures, weekly volume, drop warnings)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from monitor.web import cache
from monitor.web.common import render, require_role

NAV = [("Source health", "/admin/sources", ("admin",))]


@require_role("admin")
def sources_page(request: Request):
    report = cache.source_report(request)
    peak = max([max(r["weekly"]) for r in report] + [1])
    return render(
        request,
        "admin/sources.html",
        {
            "report": report,
            "peak": peak,
            "index_status": request.app.state.index_holder.status(),
            "warnings": sum(1 for r in report if r["warning"]),
        },
    )


routes = [Route("/admin/sources", sources_page, methods=["GET"])]
