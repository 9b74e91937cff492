"""The analysts' pages: faceted search, exports, the weekly chart, item pages, saved searches.

Queries come from monitor.archive_queries and monitor.saved_searches; this module only maps
HTTP to them.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from monitor import archive_queries as aq
from monitor import saved_searches
from monitor.errors import SearchQueryError
from monitor.web import cache
from monitor.web.common import (
    current_user,
    get_config,
    get_db,
    render,
    require_role,
    see_other,
)

ROLES = ("analyst", "curator")
NAV = [
    ("Search", "/search", ROLES),
    ("Chart", "/chart", ROLES),
    ("Saved searches", "/saved", ROLES),
]
def _labels(request: Request) -> dict:
    taxonomy = get_config(request).taxonomy
    return {
        "region": {slug: getattr(c, "label", slug) for slug, c in taxonomy.regions.items()},
        "topic": {slug: getattr(c, "label", slug) for slug, c in taxonomy.topics.items()},
    }


@require_role(*ROLES)
def search_page(request: Request):
    error = None
    result = None
    try:
        params = aq.SearchParams.from_mapping(request.query_params)
    except SearchQueryError as exc:
        params, error = aq.SearchParams(), str(exc)
    if error is None and (
        params.q
        or params.regions
        or params.topics
        or params.languages
        or params.sources
        or params.since
        or params.until
    ):
        try:
            result = cache.search(request, params)
        except SearchQueryError as exc:
            error = str(exc)
    return render(
        request,
        "search/search.html",
        {
            "params": params,
            "result": result,
            "error": error,
            "labels": _labels(request),
            "known": cache.known_values(request),
            "taxonomy": get_config(request).taxonomy,
            "candidate_window": aq.CANDIDATE_WINDOW,
        },
        status_code=400 if error else 200,
    )


def _export_params(request: Request) -> aq.SearchParams:
    try:
        return aq.SearchParams.from_mapping(request.query_params)
    except SearchQueryError as exc:
        raise HTTPException(400, str(exc)) from None


@require_role(*ROLES)
def export_csv(request: Request):
    params = _export_params(request)
    try:
        rows = aq.export_rows(get_db(request), params)
    except SearchQueryError as exc:
        raise HTTPException(400, str(exc)) from None
    return Response(
        aq.to_csv(rows),
        media_type="text/csv; charset=utf-8",
        headers={"content-disposition": 'attachment; filename="search.csv"'},
    )


@require_role(*ROLES)
def export_json(request: Request):
    params = _export_params(request)
    try:
        rows = aq.export_rows(get_db(request), params)
    except SearchQueryError as exc:
        raise HTTPException(400, str(exc)) from None
    body = json.dumps(
        {"params": params.as_dict(), "count": len(rows), "items": rows},
        ensure_ascii=False,
        indent=1,
    )
    return Response(
        body,
        media_type="application/json",
        headers={"content-disposition": 'attachment; filename="search.json"'},
    )


@require_role(*ROLES)
def chart_page(request: Request):
    query = request.query_params
    kind = query.get("by", "region")
    today = datetime.now(UTC).date()
    error = None
    data = None
    since = query.get("since") or (today - timedelta(weeks=12)).isoformat()
    until = query.get("until") or today.isoformat()
    try:
        params = aq.SearchParams.from_mapping(
            {k: query.getlist(k) for k in ("q", "region", "topic", "language", "source")}
            | {"q": query.get("q", "")}
        )
        date.fromisoformat(since), date.fromisoformat(until)
        data = cache.weekly_counts(request, kind, since, until, params)
    except ValueError:
        params, error = aq.SearchParams(), "Give the dates as YYYY-MM-DD."
    except SearchQueryError as exc:
        params, error = aq.SearchParams(), str(exc)
    chart = _chart_geometry(data) if data else None
    return render(
        request,
        "search/chart.html",
        {
            "kind": kind,
            "since": since,
            "until": until,
            "params": params,
            "data": data,
            "chart": chart,
            "error": error,
            "labels": _labels(request),
        },
        status_code=400 if error else 200,
    )


PALETTE = ("#0b4f9c", "#b3460f", "#1f7a3a", "#7a2f8f", "#8a6d00", "#1b6f7a", "#a01616", "#4a5561")


def _chart_geometry(data: dict) -> dict:
    """Coordinates for an SVG line chart (no JavaScript): one polyline per series."""
    weeks = data["weeks"]
    width, height, left, bottom, top = 760, 300, 44, 40, 10
    peak = max([max(s["counts"]) for s in data["series"]] + [1])
    step = (width - left - 30) / max(1, len(weeks) - 1)
    plot_h = height - bottom - top

    def y(value: int) -> float:
        return round(top + plot_h - plot_h * value / peak, 1)

    series = []
    for i, s in enumerate(data["series"]):
        points = " ".join(f"{round(left + j * step, 1)},{y(v)}" for j, v in enumerate(s["counts"]))
        series.append({**s, "points": points, "colour": PALETTE[i % len(PALETTE)]})
    ticks = sorted({0, peak // 2, peak})
    every = max(1, len(weeks) // 8)
    xlabels = [(round(left + j * step, 1), w[5:]) for j, w in enumerate(weeks) if j % every == 0]
    return {
        "width": width,
        "height": height,
        "left": left,
        "series": series,
        "yticks": [(y(t), t) for t in ticks],
        "xlabels": xlabels,
        "axis_y": height - bottom,
    }


@require_role(*ROLES)
def item_page(request: Request):
    item_id = request.path_params["item_id"]
    item = aq.item_detail(get_db(request), get_config(request), item_id)
    if item is None:
        raise HTTPException(404, f"There is no item {item_id} in the archive.")
    return _item_page(request, item)


def _item_page(request: Request, item: dict, error: str | None = None, status: int = 200,
               form: dict | None = None):
    from monitor import tag_reviews

    db, config = get_db(request), get_config(request)
    reviews = tag_reviews.history(db, item["id"])
    if form is None:  # the form starts from the item's stored answer
        form = {"relevant": item.get("relevant") != 0,
                "regions": {t["tag"] for t in item["tags"] if t["kind"] == "region"},
                "topics": {t["tag"] for t in item["tags"] if t["kind"] == "topic"}, "note": ""}
    return render(request, "search/item.html",
                  {"item": item, "labels": _labels(request), "reviews": reviews, "error": error,
                   "form": form, "region_tree": _region_tree(config.taxonomy)},
                  status_code=status)


def _region_tree(taxonomy) -> list[tuple[str, str, int]]:
    """(slug, label, depth): each region followed by the regions within it."""
    children: dict[str | None, list[str]] = {}
    for slug, cat in taxonomy.regions.items():
        children.setdefault(cat.within, []).append(slug)
    out: list[tuple[str, str, int]] = []

    def walk(parent: str | None, depth: int) -> None:
        for slug in children.get(parent, ()):
            out.append((slug, taxonomy.regions[slug].label, depth))
            walk(slug, depth + 1)

    walk(None, 0)
    return out


@require_role("curator")
async def item_review(request: Request):
    """A curator's answer for one item's tags (monitor.tag_reviews): stored, applied at once."""
    from monitor import tag_reviews

    item_id = request.path_params["item_id"]
    db, config = get_db(request), get_config(request)
    form = await request.form()
    relevant = form.get("relevant") == "yes"
    answer = {"relevant": relevant, "regions": set(map(str, form.getlist("region"))),
              "topics": set(map(str, form.getlist("topic"))), "note": str(form.get("note", ""))}
    if aq.item_detail(db, config, item_id) is None:
        raise HTTPException(404, f"There is no item {item_id} in the archive.")
    try:
        tag_reviews.record(db, config, item_id, relevant=relevant,
                           regions=answer["regions"] if relevant else (),
                           topics=answer["topics"] if relevant else (),
                           reviewer=current_user(request).username, note=answer["note"])
    except tag_reviews.ReviewError as exc:
        return _item_page(request, aq.item_detail(db, config, item_id), str(exc), 400, answer)
    return see_other(f"/items/{item_id}#tags")


@require_role(*ROLES)
def saved_page(request: Request, error: str | None = None, status: int = 200):
    user = current_user(request)
    return render(
        request,
        "search/saved.html",
        {
            "searches": saved_searches.list_for(get_db(request), user.id),
            "error": error,
            "params": aq.SearchParams(),
            "prefill": request.query_params.get("from", ""),
        },
        status_code=status,
    )


@require_role(*ROLES)
async def saved_create(request: Request):
    form = await request.form()
    user = current_user(request)
    try:
        from urllib.parse import parse_qs

        params = aq.SearchParams.from_mapping(parse_qs(str(form.get("search", ""))))
        if not (params.q or params.regions or params.topics or params.languages or params.sources):
            raise SearchQueryError("Run a search first, then save it (the query is empty).")
        saved_searches.save(
            get_db(request),
            user.id,
            str(form.get("name", "")),
            params,
            str(form.get("frequency", "")),
            str(form.get("email") or user.email or ""),
        )
    except SearchQueryError as exc:
        return saved_page.__wrapped__(request, error=str(exc), status=400)
    return see_other("/saved")


@require_role(*ROLES)
def saved_delete(request: Request):
    user = current_user(request)
    owner = None if user.role == "admin" else user.id
    if not saved_searches.delete(get_db(request), request.path_params["search_id"], owner):
        raise HTTPException(404, "That saved search does not exist.")
    return see_other("/saved")


routes = [
    Route("/search", search_page, methods=["GET"]),
    Route("/search.csv", export_csv, methods=["GET"]),
    Route("/search.json", export_json, methods=["GET"]),
    Route("/chart", chart_page, methods=["GET"]),
    Route("/items/{item_id:int}", item_page, methods=["GET"]),
    Route("/items/{item_id:int}/review", item_review, methods=["POST"]),
    Route("/saved", saved_page, methods=["GET"]),
    Route("/saved", saved_create, methods=["POST"]),
    Route("/saved/{search_id:int}/delete", saved_delete, methods=["POST"]),
]
