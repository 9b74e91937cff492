"""A small read-only JSON API (search, item, sources), described by /api/openapi.json.

Authenticated by the same session cookie as the pages (analysts, curators, admins); the answers
are the dictionaries monitor.archive_queries returns, nothing computed here.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from monitor import archive_queries as aq
from monitor.errors import SearchQueryError
from monitor.web import cache
from monitor.web.common import get_config, get_db, require_role

ROLES = ("analyst", "curator")
NAV = [("API", "/api/docs", ROLES)]


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


@require_role(*ROLES)
def api_search(request: Request):
    try:
        params = aq.SearchParams.from_mapping(request.query_params)
        result = cache.search(request, params)
    except SearchQueryError as exc:
        return _error(400, str(exc))
    return JSONResponse(result.as_dict())


@require_role(*ROLES)
def api_item(request: Request):
    item_id = request.path_params["item_id"]
    item = aq.item_detail(get_db(request), get_config(request), item_id)
    if item is None:
        return _error(404, f"There is no item {item_id} in the archive.")
    keep = (
        "id",
        "url",
        "source",
        "sources",
        "title",
        "summary",
        "text",
        "language",
        "published",
        "fetched_at",
        "author",
        "relevant",
        "cluster_id",
    )
    body = {k: item.get(k) for k in keep}
    body["tags"] = [
        {
            "kind": t["kind"],
            "tag": t["tag"],
            "label": t["label"],
            "score": t["score"],
            "evidence": t["evidence_lines"],
        }
        for t in item["tags"]
    ]
    body["cluster"] = [
        {
            "id": o["id"],
            "title": o["title"],
            "source": o["source"],
            "url": o["url"],
            "language": o["language"],
            "date": o["day"],
        }
        for o in item["cluster"]
    ]
    return JSONResponse(body)


@require_role(*ROLES)
def api_sources(request: Request):
    keys = (
        "name",
        "url",
        "kind",
        "language",
        "enabled",
        "last_success",
        "last_error",
        "last_error_at",
        "consecutive_failures",
        "items_last_7_days",
        "total_items",
        "weekly",
        "warning",
    )
    rows = [{k: row.get(k) for k in keys} for row in cache.source_report(request)]
    for row in rows:
        row["enabled"] = bool(row["enabled"])
    return JSONResponse({"sources": rows})


def openapi(request: Request):
    return JSONResponse(openapi_document(get_config(request).web.base_url))


def api_docs(request: Request):
    from monitor.web.common import render

    return render(request, "api.html", {"doc": openapi_document(get_config(request).web.base_url)})


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


_STR = {"type": "string"}
_INT = {"type": "integer"}
_ERROR = {"type": "object", "required": ["error"], "properties": {"error": _STR}}
_TAG_REF = {
    "type": "object",
    "required": ["kind", "tag"],
    "properties": {"kind": {"type": "string", "enum": ["region", "topic"]}, "tag": _STR},
}
_SEARCH_ITEM = {
    "type": "object",
    "required": ["id", "url", "source", "title", "snippet", "tags"],
    "properties": {
        "id": _INT,
        "url": _STR,
        "source": _STR,
        "title": _STR,
        "language": _nullable(_STR),
        "published": _nullable(_STR),
        "fetched_at": _STR,
        "relevant": _nullable(_INT),
        "cluster_id": _nullable(_INT),
        "snippet": _STR,
        "tags": {"type": "array", "items": _TAG_REF},
    },
}
_FACET = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["value", "count"],
        "properties": {"value": _STR, "count": _INT},
    },
}


def _many(name: str, description: str) -> dict:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "style": "form",
        "explode": True,
        "schema": {"type": "array", "items": {"type": "string", "maxLength": 64}, "maxItems": 5},
    }


def openapi_document(base_url: str) -> dict:
    unauthorised = {
        "description": "Not signed in",
        "content": {"application/json": {"schema": _ERROR}},
    }
    forbidden = {
        "description": "The account may not use the API",
        "content": {"application/json": {"schema": _ERROR}},
    }
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Border Monitor archive API",
            "version": "1.0.0",
            "description": "Read-only access to the archive of border news. Sign in through "
            "/login; the session cookie authenticates API calls.",
        },
        "servers": [{"url": base_url}],
        "components": {
            "securitySchemes": {
                "session": {"type": "apiKey", "in": "cookie", "name": "bnm_session"}
            },
            "schemas": {"Error": _ERROR, "SearchItem": _SEARCH_ITEM},
        },
        "security": [{"session": []}],
        "paths": {
            "/api/search": {
                "get": {
                    "operationId": "search",
                    "summary": "Full-text search with filters and facet counts",
                    "parameters": [
                        {
                            "name": "q",
                            "in": "query",
                            "required": False,
                            "description": 'Words, "phrases", prefix*, OR, NOT, -word',
                            "schema": {"type": "string", "maxLength": 200},
                        },
                        _many("region", "Region slugs (any of them)"),
                        _many("topic", "Topic slugs (any of them)"),
                        _many("language", "ISO 639-1 codes"),
                        _many("source", "Source names"),
                        {
                            "name": "since",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "format": "date"},
                        },
                        {
                            "name": "until",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "format": "date"},
                        },
                        {
                            "name": "sort",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "string", "enum": list(aq.SORTS)},
                        },
                        {
                            "name": "page",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": 10000},
                        },
                        {
                            "name": "per_page",
                            "in": "query",
                            "required": False,
                            "schema": {"type": "integer", "minimum": 1, "maximum": aq.MAX_PER_PAGE},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "One page of results",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": [
                                            "total",
                                            "total_capped",
                                            "items",
                                            "facets",
                                            "params",
                                        ],
                                        "properties": {
                                            "total": _INT,
                                            "total_capped": {"type": "boolean"},
                                            "facet_window": _INT,
                                            "params": {"type": "object"},
                                            "facets": {
                                                "type": "object",
                                                "properties": {k: _FACET for k in aq.FACET_KINDS},
                                            },
                                            "items": {
                                                "type": "array",
                                                "items": {
                                                    "$ref": "#/components/schemas/SearchItem"
                                                },
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "400": {
                            "description": "The query or a filter is malformed; the message says how",
                            "content": {"application/json": {"schema": _ERROR}},
                        },
                        "401": unauthorised,
                        "403": forbidden,
                    },
                }
            },
            "/api/items/{item_id}": {
                "get": {
                    "operationId": "item",
                    "summary": "One item with its tags, evidence and story cluster",
                    "parameters": [
                        {
                            "name": "item_id",
                            "in": "path",
                            "required": True,
                            "schema": {
                                "type": "integer",
                                "minimum": 0,
                                "maximum": 9223372036854775807,
                            },
                        }
                    ],
                    "responses": {
                        "200": {
                            "description": "The item",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["id", "url", "title", "tags", "cluster"],
                                        "properties": {
                                            "id": _INT,
                                            "url": _STR,
                                            "source": _STR,
                                            "sources": {"type": "array", "items": _STR},
                                            "title": _STR,
                                            "summary": _STR,
                                            "text": _STR,
                                            "language": _nullable(_STR),
                                            "published": _nullable(_STR),
                                            "fetched_at": _STR,
                                            "author": _nullable(_STR),
                                            "relevant": _nullable(_INT),
                                            "cluster_id": _nullable(_INT),
                                            "tags": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["kind", "tag", "score"],
                                                    "properties": {
                                                        "kind": _STR,
                                                        "tag": _STR,
                                                        "label": _STR,
                                                        "score": {"type": "number"},
                                                        "evidence": {
                                                            "type": "array",
                                                            "items": _STR,
                                                        },
                                                    },
                                                },
                                            },
                                            "cluster": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["id", "title"],
                                                    "properties": {
                                                        "id": _INT,
                                                        "title": _STR,
                                                        "source": _STR,
                                                        "url": _STR,
                                                        "language": _nullable(_STR),
                                                        "date": _nullable(_STR),
                                                    },
                                                },
                                            },
                                        },
                                    }
                                }
                            },
                        },
                        "404": {
                            "description": "No such item",
                            "content": {"application/json": {"schema": _ERROR}},
                        },
                        "401": unauthorised,
                        "403": forbidden,
                    },
                }
            },
            "/api/sources": {
                "get": {
                    "operationId": "sources",
                    "summary": "Configured sources with their health and weekly volume",
                    "responses": {
                        "200": {
                            "description": "All configured sources",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "required": ["sources"],
                                        "properties": {
                                            "sources": {
                                                "type": "array",
                                                "items": {
                                                    "type": "object",
                                                    "required": ["name", "url", "weekly"],
                                                    "properties": {
                                                        "name": _STR,
                                                        "url": _STR,
                                                        "kind": _STR,
                                                        "language": _nullable(_STR),
                                                        "enabled": {"type": "boolean"},
                                                        "last_success": _nullable(_STR),
                                                        "last_error": _nullable(_STR),
                                                        "last_error_at": _nullable(_STR),
                                                        "consecutive_failures": _INT,
                                                        "items_last_7_days": _INT,
                                                        "total_items": _INT,
                                                        "weekly": {"type": "array", "items": _INT},
                                                        "warning": _nullable(_STR),
                                                    },
                                                },
                                            }
                                        },
                                    }
                                }
                            },
                        },
                        "401": unauthorised,
                        "403": forbidden,
                    },
                }
            },
        },
    }


routes = [
    Route("/api/openapi.json", openapi, methods=["GET"]),
    Route("/api/docs", api_docs, methods=["GET"]),
    Route("/api/search", api_search, methods=["GET"]),
    Route("/api/items/{item_id:int}", api_item, methods=["GET"]),
    Route("/api/sources", api_sources, methods=["GET"]),
]
