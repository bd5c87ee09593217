"""The feature server's OpenAPI 3 document, written by hand (no framework generates it), and
the ``/docs`` page that renders it. Kept next to the routes it describes: a change to one is a
change to the other (the schemathesis test in tests/server/ fuzzes the server against it)."""

from __future__ import annotations

from typing import Any

from skewless import __version__

STATUSES = ["PRESENT", "NOT_FOUND", "OUTSIDE_TTL", "CACHED", "UNAVAILABLE"]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str, example: Any = None) -> dict[str, Any]:
    content: dict[str, Any] = {"schema": schema}
    if example is not None:
        content["example"] = example
    return {"description": description, "content": {"application/json": content}}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_KEY_VALUE = {"anyOf": [{"type": "integer", "format": "int64"}, {"type": "string"}],
              "description": "A join-key value: an integer or a string, as the view declares it."}
_ENTITY_VALUE = {"anyOf": [{"type": "integer", "format": "int64"}, {"type": "string"},
                           {"type": "number"}, {"type": "boolean"}, {"type": "null"}],
                 "description": "A join-key value (an integer or a string, as the view declares "
                                "it), or the value of a request field an on-demand view reads "
                                "(its declared type: docs/on-demand.md)."}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "description": "Every error: a machine-readable code, what went wrong, what to do next.",
        "required": ["code", "message", "hint"],
        "properties": {
            "code": {"type": "string", "description": "invalid_request, not_found, "
                     "online_store_unavailable, feature_unavailable, ... (errors.py)",
                     "example": "invalid_request"},
            "message": {"type": "string"},
            "hint": {"type": "string", "nullable": True},
        },
    },
    "GetOnlineFeaturesRequest": {
        "type": "object",
        "description": "Feast's request: the features (references or a feature service) and the "
                       "entities, columnar. Pass exactly one of features and feature_service.",
        "required": ["entities"],
        "additionalProperties": False,
        "properties": {
            "features": {"type": "array", "minItems": 1,
                         "items": {"type": "string", "pattern": "^[^:]+:[^:]+$"},
                         "description": "Feature references 'view:feature' (or 'view:*')."},
            "feature_service": {"type": "string", "minLength": 1,
                                "description": "A feature service name, instead of features."},
            "entities": {"type": "object", "minProperties": 1,
                         "additionalProperties": {"type": "array", "items": _ENTITY_VALUE},
                         "description": "Each join key (and each request field of the on-demand "
                                        "views requested) to its values, one per entity row; "
                                        "every array has the same length."},
            "full_feature_names": {"type": "boolean", "default": False,
                                   "description": "Name feature columns 'view__feature'."},
        },
        "oneOf": [{"required": ["features"]}, {"required": ["feature_service"]}],
    },
    "FeatureVector": {
        "type": "object",
        "description": "One column of the result: a value, a status and an event time per entity row.",
        "required": ["values", "statuses", "event_timestamps"],
        "properties": {
            "values": {"type": "array", "items": {},
                       "description": "Values in entity-row order (bytes base64, timestamps ISO 8601)."},
            "statuses": {"type": "array", "items": {"type": "string", "enum": STATUSES}},
            "event_timestamps": {"type": "array",
                                 "items": {"type": "string", "format": "date-time", "nullable": True},
                                 "description": "Event time of each value (UTC); null when nothing "
                                                "is stored; 1970-01-01T00:00:00Z for join keys."},
        },
    },
    "GetOnlineFeaturesResponse": {
        "type": "object",
        "required": ["metadata", "results"],
        "properties": {
            "metadata": {
                "type": "object", "required": ["feature_names"],
                "properties": {
                    "feature_names": {"type": "array", "items": {"type": "string"},
                                      "description": "Column names: join keys first, then features."},
                    "feature_types": {"type": "array",
                                      "items": {"type": "string", "nullable": True},
                                      "description": "skewless addition: each column's type "
                                                     "(Int64, String, UnixTimestamp, Array(Float64), ...)."},
                    "degraded": {"type": "boolean",
                                 "description": "skewless addition, present only when the online "
                                                "store did not answer: the values came from the "
                                                "fallback chain (statuses CACHED, UNAVAILABLE)."},
                    "store_error": {"type": "string",
                                    "description": "skewless addition, with degraded: the online "
                                                   "store's error."},
                },
            },
            "results": {"type": "array", "items": _ref("FeatureVector"),
                        "description": "One FeatureVector per column of metadata.feature_names."},
        },
    },
    "PushRequest": {
        "type": "object",
        "required": ["push_source_name", "df"],
        "additionalProperties": False,
        "properties": {
            "push_source_name": {"type": "string", "minLength": 1},
            "df": {"type": "object", "minProperties": 1,
                   "additionalProperties": {"type": "array", "minItems": 1, "items": {}},
                   "description": "Columns to arrays of values, one per row. Timestamp columns: "
                                  "ISO 8601 strings (naive means UTC) or epoch seconds."},
            "to": {"type": "string", "enum": ["online", "offline", "online_and_offline"],
                   "default": "online_and_offline"},
            "batch_id": {"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
                         "description": "Idempotency key: a retry of the same batch id lands its "
                                        "rows offline once. Default: a digest of the rows."},
        },
    },
    "PushResponse": {
        "type": "object",
        "required": ["push_source_name", "to", "rows"],
        "properties": {
            "push_source_name": {"type": "string"},
            "to": {"type": "string"},
            "rows": {"type": "integer", "description": "Rows in the batch."},
            "offline_rows": {"type": "integer", "description": "Rows written to the batch source."},
            "online_records": {"type": "object", "additionalProperties": {"type": "integer"},
                               "description": "Per online view: entities written (only if newer)."},
            "seconds": {"type": "number"},
            "batch_id": {"type": "string", "nullable": True,
                         "description": "The batch id given, or derived from the rows."},
            "duplicate": {"type": "boolean",
                          "description": "The batch was already offline (a retry): not written "
                                         "again; the online write was redone."},
            "pending_rows": {"type": "integer",
                             "description": "Rows not usable yet at the push time (event time + "
                                            "the source's availability_delay is later): written "
                                            "offline only; a materialization at or after their "
                                            "availability time brings them online."},
        },
    },
    "Health": {"type": "object", "required": ["status"],
               "properties": {"status": {"type": "string", "enum": ["ok"]}}},
    "Readiness": {
        "type": "object",
        "required": ["ready", "online_store"],
        "properties": {
            "ready": {"type": "boolean"},
            "online_store": {"type": "string", "enum": ["ok", "unreachable"]},
            "views": {"type": "array", "items": {"type": "string"},
                      "description": "The online feature views."},
            "not_materialized": {"type": "array", "items": {"type": "string"},
                                 "description": "Online views never materialized."},
            "registry": {"type": "string", "enum": ["ok", "stale", "unreadable"],
                         "description": "stale: the registry cannot be read; the last good "
                         "definitions are served (docs/server.md)."},
            "registry_version": {"type": "integer", "nullable": True},
            "registry_snapshot_age_seconds": {"type": "number", "nullable": True},
            "registry_error": {"$ref": "#/components/schemas/Error"},
            "code": {"type": "string"},
            "message": {"type": "string"},
            "hint": {"type": "string", "nullable": True},
        },
    },
}

_GET_EXAMPLE = {"features": ["user_spend:amount_sum_7d", "user_spend:txn_count_7d"],
                "entities": {"user_id": [1001, 1002]}}
_GET_RESPONSE_EXAMPLE = {
    "metadata": {"feature_names": ["user_id", "amount_sum_7d", "txn_count_7d"],
                 "feature_types": ["Int64", "Float64", "Int64"]},
    "results": [
        {"values": [1001, 1002], "statuses": ["PRESENT", "PRESENT"],
         "event_timestamps": ["1970-01-01T00:00:00Z", "1970-01-01T00:00:00Z"]},
        {"values": [120.5, None], "statuses": ["PRESENT", "NOT_FOUND"],
         "event_timestamps": ["2024-05-01T10:00:00Z", None]},
        {"values": [3, 0], "statuses": ["PRESENT", "NOT_FOUND"],
         "event_timestamps": ["2024-05-01T10:00:00Z", None]},
    ],
}


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "skewless feature server",
            "version": __version__,
            "description": "Online features with the offline join's semantics (TTL, defaults, "
                           "fail-closed views), Feast-compatible request and response shapes. "
                           "Every error is a JSON body {code, message, hint}.",
        },
        "paths": {
            "/get-online-features": {"post": {
                "operationId": "getOnlineFeatures",
                "summary": "Latest feature values for entities",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("GetOnlineFeaturesRequest"), "example": _GET_EXAMPLE}}},
                "responses": {
                    "200": _json(_ref("GetOnlineFeaturesResponse"), "One result per column.",
                                 _GET_RESPONSE_EXAMPLE),
                    "400": _error("Malformed JSON, a wrong shape, an unknown feature (code "
                                  "not_found), a join key or request field missing or of the "
                                  "wrong type."),
                    "404": _error("Unknown feature service (code not_found)."),
                    "413": _error("The body is over 64 MiB, or the request has more entity rows "
                                  "than serving.max_entities_per_request (code request_too_large)."),
                    "503": _error("The online store did not answer (online_store_unavailable), or "
                                  "a view declared on_missing='fail' has no fresh value "
                                  "(feature_unavailable)."),
                    "500": _error("An on-demand view's function raised or returned a result that "
                                  "does not fit its schema (code transform_failed; the message "
                                  "names the view and the column)."),
                },
            }},
            "/push": {"post": {
                "operationId": "push",
                "summary": "Push rows to a push source (offline first, then online)",
                "requestBody": {"required": True, "content": {"application/json": {
                    "schema": _ref("PushRequest"),
                    "example": {"push_source_name": "user_events", "to": "online_and_offline",
                                "df": {"user_id": [1001], "event_ts": ["2024-05-01T10:00:00Z"],
                                       "amount": [3.5]}}}}},
                "responses": {
                    "200": _json(_ref("PushResponse"), "The rows were written."),
                    "400": _error("Malformed JSON, a wrong shape, bad rows (named) or bad timestamps; "
                                  "nothing was written."),
                    "404": _error("Unknown push source."),
                    "413": _error("The body is over 64 MiB (code request_too_large)."),
                    "503": _error("The online store did not answer."),
                },
            }},
            "/health": {"get": {
                "operationId": "health", "summary": "Liveness: 200 while the process runs",
                "responses": {"200": _json(_ref("Health"), "Alive.")},
            }},
            "/ready": {"get": {
                "operationId": "ready",
                "summary": "Readiness: the online store answers and every online view was materialized",
                "responses": {
                    "200": _json(_ref("Readiness"), "Ready for traffic."),
                    "503": _json(_ref("Readiness"), "Not ready: the store is unreachable or views "
                                 "were never materialized (listed)."),
                },
            }},
            "/metrics": {"get": {
                "operationId": "metrics", "summary": "Prometheus metrics (text exposition format)",
                "responses": {"200": {"description": "Metrics.",
                                      "content": {"text/plain": {"schema": {"type": "string"}}}}},
            }},
            "/openapi.json": {"get": {
                "operationId": "openapi", "summary": "This document",
                "responses": {"200": _json({"type": "object"}, "The OpenAPI document.")},
            }},
        },
        "components": {"schemas": SCHEMAS},
    }


DOCS_HTML = """<!doctype html>
<html><head><meta charset="utf-8"><title>skewless feature server</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({url: "/openapi.json", dom_id: "#ui"});</script>
<noscript>The API is described by <a href="/openapi.json">/openapi.json</a>.</noscript>
</body></html>
"""
